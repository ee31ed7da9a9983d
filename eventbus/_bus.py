"""``EventBus``: subscriptions, emission entry points and their bookkeeping.

The dispatch loop itself lives in ``_dispatch``; this module decides *whether*
and *with what* an emission runs (route, chain, closing state) and keeps the
subscription tables, which are copied on write so that emissions never lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import threading
import weakref
from asyncio.events import _get_running_loop
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from time import time
from typing import Any, Final, Self, TypeVar, final, overload

from ._catalog import EventSpec, check_payload, make_spec, suggest
from ._chain import Frame, chain_names, current_frame, loops_back, runs_on, stand_in_chain
from ._dispatch import BlockingRunner, dispatch, dispatch_sync
from ._errors import BusClosedError, ReentrancyError, UnknownEventError, safe_repr
from ._event import Event, new_event, next_serial
from ._handlers import (
    HandlerInfo,
    _Subscription,
    check_count,
    check_handler,
    check_options,
    check_timeout,
    subscription_identity,
)
from ._logging import LogGate, structlog_config
from ._names import check_name, check_pattern, is_pattern, key_matches, keys_overlap
from ._report import EmitReport, new_report
from ._routes import Route, dispatch_order
from ._taps import Tap
from ._testing import Recorder, RecordingTap

__all__ = ["EventBus"]

H = TypeVar("H", bound=Callable[[Event], object])
ErrorHook = Callable[[Event, HandlerInfo, Exception], Any]

_MAX_CACHED_ROUTES: Final = 4096
_NO_HANDLERS: Final[tuple[HandlerInfo, ...]] = ()


def _collected_callback(bus_ref: weakref.ref[EventBus]) -> Callable[[object], None]:
    """The weakref callback for a bus's weakly held handlers (holds the bus weakly)."""

    def collected(_: object) -> None:
        bus = bus_ref()
        if bus is not None:
            bus._has_dead = True
            bus._routes = {}

    return collected


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@final
class EventBus:
    """An in-process event bus: modules subscribe handlers to event names and
    emit events without importing each other.

    Handlers run one at a time in a deterministic order (priority, then
    subscription order), each isolated from the others' failures. The
    guarantees are listed in the README and the guides.
    """

    def __init__(
        self,
        name: str = "eventbus",
        *,
        logger: Any | None = None,
        max_depth: int = 16,
        strict: bool = False,
        handler_timeout: float | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"bus name must be a str, not {type(name).__name__}")
        if not name:
            raise ValueError("bus name must not be empty")
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, not {type(strict).__name__}")
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable or None, not {type(on_error).__name__}")
        self._name: Final = name
        self._log: Final = LogGate(logger)
        self._max_depth: Final = check_count(max_depth, "max_depth", minimum=0)
        self._strict: Final = strict
        self._handler_timeout: Final = check_timeout(handler_timeout, "handler_timeout")
        self._on_error: Final = on_error
        self._lock: Final = threading.RLock()
        self._order: Final = itertools.count()
        self._on_collected: Final = _collected_callback(weakref.ref(self))
        # Changed under _lock, read without it: a key's tuple is replaced, never
        # mutated; the other tables are copied on write.
        self._subscriptions: dict[str, tuple[HandlerInfo, ...]] = {}
        self._specs: dict[str, EventSpec] = {}
        self._mutes: tuple[str, ...] = ()
        self._taps: tuple[Tap, ...] = ()
        self._routes: dict[str, Route] = {}
        self._has_dead = False
        # Emissions under way (one entry each; list append/pop are atomic).
        self._inflight: Final[list[None]] = []
        self._closing = False
        self._closed = False
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._tasks: Final[set[asyncio.Task[Any]]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the last one emitted on
        self._loops: Final[weakref.WeakSet[asyncio.AbstractEventLoop]] = weakref.WeakSet()

    @property
    def name(self) -> str:
        """The bus's name, as its log entries show it."""
        return self._name

    @property
    def strict(self) -> bool:
        """Whether only declared events may be emitted and subscribed to."""
        return self._strict

    @property
    def max_depth(self) -> int:
        """The deepest nesting of emissions allowed (depths 0..max_depth run)."""
        return self._max_depth

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` was called (new top-level emissions are refused)."""
        return self._closing

    def __repr__(self) -> str:
        state = " closed" if self._closing else ""
        return f"<EventBus {self._name!r} subscriptions={self.listener_count()}{state}>"

    # ------------------------------------------------------------------ subscribing

    @overload
    def on(
        self,
        name: str,
        handler: H,
        *,
        priority: int = 0,
        once: bool = False,
        predicate: Callable[[Event], object] | None = None,
        weak: bool | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> H: ...

    @overload
    def on(
        self,
        name: str,
        handler: None = None,
        *,
        priority: int = 0,
        once: bool = False,
        predicate: Callable[[Event], object] | None = None,
        weak: bool | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> Callable[[H], H]: ...

    def on(
        self,
        name: str,
        handler: H | None = None,
        *,
        priority: int = 0,
        once: bool = False,
        predicate: Callable[[Event], object] | None = None,
        weak: bool | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> H | Callable[[H], H]:
        """Subscribe ``handler`` to an event name or pattern; return it unchanged.

        Without ``handler``, return a decorator that subscribes the function it
        decorates. Subscribing the same handler to the same name twice is a
        no-op that keeps the first subscription's options.
        """
        if handler is None:
            return self._decorator(name, priority, once, predicate, weak, timeout, owner)
        self._subscribe(name, handler, priority, once, predicate, weak, timeout, owner)
        return handler

    @overload
    def once(
        self,
        name: str,
        handler: H,
        *,
        priority: int = 0,
        predicate: Callable[[Event], object] | None = None,
        weak: bool | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> H: ...

    @overload
    def once(
        self,
        name: str,
        handler: None = None,
        *,
        priority: int = 0,
        predicate: Callable[[Event], object] | None = None,
        weak: bool | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> Callable[[H], H]: ...

    def once(
        self,
        name: str,
        handler: H | None = None,
        *,
        priority: int = 0,
        predicate: Callable[[Event], object] | None = None,
        weak: bool | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> H | Callable[[H], H]:
        """``on(..., once=True)``: the handler runs at most once, ever."""
        if handler is None:
            return self._decorator(name, priority, True, predicate, weak, timeout, owner)
        self._subscribe(name, handler, priority, True, predicate, weak, timeout, owner)
        return handler

    def _decorator(
        self,
        name: str,
        priority: int,
        once: bool,
        predicate: Callable[[Event], object] | None,
        weak: bool | None,
        timeout: float | None,
        owner: str | None,
    ) -> Callable[[H], H]:
        """``on``'s decorator form; bad options raise at once, not when decorating."""
        check_options(priority, once, predicate, weak, timeout, owner)
        name = self.check_subscribable(name)

        def decorator(function: H) -> H:
            self._subscribe(name, function, priority, once, predicate, weak, timeout, owner)
            return function

        return decorator

    def off(self, name: str, handler: Callable[..., Any]) -> bool:
        """Unsubscribe ``handler`` from exactly this name or pattern; True if it was."""
        name = check_pattern(name)
        check_handler(handler)
        identity = subscription_identity(handler)
        with self._lock:
            for info in self._subscriptions.get(name, _NO_HANDLERS):
                if info._identity == identity and info.alive:
                    self._remove((info,))
                    return True
        return False

    @contextlib.contextmanager
    def subscribed(
        self,
        name: str,
        handler: H,
        *,
        priority: int = 0,
        once: bool = False,
        predicate: Callable[[Event], object] | None = None,
        weak: bool | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> Iterator[H]:
        """Subscribe ``handler`` for the duration of a ``with`` block.

        A subscription that existed before the block is left in place.
        """
        info = self._subscribe(name, handler, priority, once, predicate, weak, timeout, owner)
        try:
            yield handler
        finally:
            if info is not None:
                self._discard(info)

    def clear(self, name: str | None = None, *, owner: str | None = None) -> int:
        """Drop subscriptions: all of them, those made with exactly ``name`` (a
        name or pattern), those of ``owner``, or those matching both. Returns
        how many were dropped."""
        if name is not None:
            name = check_pattern(name)
        if owner is not None and not isinstance(owner, str):
            raise TypeError(
                f"owner must be a str or None, not {type(owner).__name__}: {safe_repr(owner)}"
            )
        self._purge_collected()
        with self._lock:
            doomed = [
                info
                for key, infos in list(self._subscriptions.items())
                if name is None or key == name
                for info in infos
                if (owner is None or info.owner == owner) and info.alive
            ]
            self._remove(doomed)
        return len(doomed)

    def check_subscribable(self, key: str) -> str:
        """Return ``key`` as ``on()`` would accept it, or raise as ``on()`` would:
        ``TypeError``/``ValueError`` for a bad name or pattern, ``UnknownEventError``
        when a strict bus has no declared event it matches."""
        key = check_pattern(key)
        if self._strict and not self._is_declared(key):
            kind = "pattern" if is_pattern(key) else "event"
            raise UnknownEventError(
                f"strict bus {self._name!r}: {kind} {key!r} matches no declared event; "
                f"{suggest(key, list(self._specs))}"
            )
        return key

    def _is_declared(self, key: str) -> bool:
        if is_pattern(key):
            return any(key_matches(key, name) for name in self._specs)
        return key in self._specs

    def _subscribe(
        self,
        key: str,
        handler: Callable[..., Any],
        priority: int,
        once: bool,
        predicate: Callable[[Event], object] | None,
        weak: bool | None,
        timeout: float | None,
        owner: str | None,
    ) -> HandlerInfo | None:
        """Register one subscription; None if the handler was already subscribed to ``key``."""
        check_handler(handler)
        if not (  # the defaults need no checking: skip the call on the common path
            type(priority) is int
            and type(once) is bool
            and predicate is None
            and weak is None
            and timeout is None
            and owner is None
        ):
            check_options(priority, once, predicate, weak, timeout, owner)
        key = self.check_subscribable(key)
        identity = subscription_identity(handler)
        with self._lock:
            if self._has_dead:
                self._purge_collected()
            existing = self._subscriptions.get(key, _NO_HANDLERS)
            for known in existing:
                if known._identity == identity and known.alive:
                    return None
            info = _Subscription(
                handler,
                identity,
                key,
                priority,
                once,
                predicate,
                weak,
                self._handler_timeout if timeout is None else float(timeout),
                owner,
                next(self._order),
                self._on_collected,
            )
            info.__class__ = HandlerInfo  # read-only from now on
            self._subscriptions[key] = (*existing, info)  # type: ignore[arg-type]
            self._routes = {}
        return info  # type: ignore[return-value]

    def _discard(self, info: HandlerInfo) -> None:
        """Remove one subscription if it is still there (once-claims, ``subscribed``)."""
        with self._lock:
            self._remove((info,))

    def _remove(self, doomed: Iterable[HandlerInfo]) -> None:
        """Drop these subscriptions; the caller holds the lock.

        Each key's tuple is replaced, never changed, so an emission or an
        introspection reading the old one is unaffected.
        """
        subscriptions = self._subscriptions
        changed = False
        for info in doomed:
            key = info.pattern
            infos = subscriptions.get(key, _NO_HANDLERS)
            if info in infos:
                if len(infos) == 1:
                    del subscriptions[key]
                else:
                    index = infos.index(info)
                    subscriptions[key] = infos[:index] + infos[index + 1 :]
                changed = True
        if changed:
            self._routes = {}

    def _purge_collected(self) -> None:
        """Forget subscriptions whose weakly held handler was collected."""
        if self._has_dead:
            with self._lock:
                self._has_dead = False
                self._remove(
                    [
                        info
                        for infos in list(self._subscriptions.values())
                        for info in infos
                        if not info.alive
                    ]
                )

    # ------------------------------------------------------------------ catalog

    def declare(
        self,
        name: str,
        *,
        description: str = "",
        payload: dict[str, Any] | None = None,
        reentrant: bool = False,
    ) -> EventSpec:
        """Declare an event: its description, required payload types, re-entrancy.

        Declaring the same event again with the same spec is harmless; with a
        different spec it is a ``ValueError``.
        """
        name = check_name(name)
        spec = make_spec(name, description, payload, reentrant)
        with self._lock:
            known = self._specs.get(name)
            if known is not None:
                if known == spec:
                    return known
                raise ValueError(f"event {name!r} is already declared differently: {known}")
            self._specs = {**self._specs, name: spec}
            self._routes = {}
        return spec

    def catalog(self) -> tuple[EventSpec, ...]:
        """Every declared event, sorted by name."""
        return tuple(spec for _, spec in sorted(self._specs.items()))

    # ------------------------------------------------------------------ emitting

    async def emit(self, name: str, /, *, source: str | None = None, **payload: Any) -> EmitReport:
        """Run every matching handler in order, awaiting async ones; report how each fared."""
        try:  # only a plain str may use the cache: anything else is checked first
            route = self._routes[name] if type(name) is str else self._route(name)
        except KeyError:
            route = self._route(name)
        loop = _get_running_loop()
        if loop is not self._loop:
            self._adopt_loop(loop)
        parent = current_frame.get()
        inflight = self._inflight
        inflight.append(None)  # before reading _closing: see aclose
        try:
            if parent is None and route.plain and source is None and not self._closing:
                fields = (route.name, payload, None, next_serial(), None, 0, time())
                event = new_event(Event, fields)
            else:
                event = self._admit(route, payload, source, parent)
            if route.calls:
                token = current_frame.set((self, event, parent))
                try:
                    report = await dispatch(self, route, event)
                finally:
                    current_frame.reset(token)
            else:
                report = new_report(EmitReport, (event, (), (), 0))
            gate = self._log
            if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
                self._log_emitted(report, route)
            return report
        finally:
            inflight.pop()
            if self._closing:
                self._wake_closers()

    def emit_sync(self, name: str, /, *, source: str | None = None, **payload: Any) -> EmitReport:
        """``emit`` for synchronous code.

        Outside a running loop, async handlers run on a loop this bus emitted on
        that is still running in another thread, else on a private loop. Inside
        a running loop's thread, async handlers cannot be awaited: RuntimeError.
        """
        try:  # only a plain str may use the cache: anything else is checked first
            route = self._routes[name] if type(name) is str else self._route(name)
        except KeyError:
            route = self._route(name)
        running = _get_running_loop()
        if running is not None and route.has_async:
            if self._closing:
                self._refuse_if_closed(name, current_frame.get())
            async_names = ", ".join(info.name for info in route.handlers if info.is_async)
            raise RuntimeError(
                f"emit_sync({name!r}) inside a running event loop cannot run async handlers "
                f"({async_names}); use `await bus.emit(...)` or `bus.publish(...)`"
            )
        parent = current_frame.get()
        inflight = self._inflight
        inflight.append(None)
        try:
            if parent is None and route.plain and source is None and not self._closing:
                fields = (route.name, payload, None, next_serial(), None, 0, time())
                event = new_event(Event, fields)
            else:
                event = self._admit(route, payload, source, parent)
            if route.calls:
                token = current_frame.set((self, event, parent))
                try:
                    report = dispatch_sync(self, route, event, running is not None)
                finally:
                    current_frame.reset(token)
            else:
                report = new_report(EmitReport, (event, (), (), 0))
            gate = self._log
            if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
                self._log_emitted(report, route)
            return report
        finally:
            inflight.pop()
            if self._closing:
                self._wake_closers()

    def publish(
        self, name: str, /, *, source: str | None = None, **payload: Any
    ) -> asyncio.Task[EmitReport]:
        """Emit in a new task (fire and forget); ``drain()`` waits for it.

        Refusals (loops, payload, strict, closed) raise here, not in the task.
        """
        loop = _get_running_loop()
        if loop is None:
            raise RuntimeError(
                "publish() needs a running event loop; from synchronous code use emit_sync()"
            )
        try:  # only a plain str may use the cache: anything else is checked first
            route = self._routes[name] if type(name) is str else self._route(name)
        except KeyError:
            route = self._route(name)
        if loop is not self._loop:
            self._adopt_loop(loop)
        parent = current_frame.get()
        self._inflight.append(None)  # counted until the task is done: see _published_done
        try:
            event = self._admit(route, payload, source, parent)
            task = loop.create_task(self._deliver(route, event, parent), name=f"eventbus:{name}")
        except BaseException:
            self._finish_one()
            raise
        self._tasks.add(task)
        task.add_done_callback(self._published_done)
        return task

    async def drain(self) -> None:
        """Wait until every published emission of this loop is done, including
        those published while draining."""
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()  # a published handler draining must not wait for itself
        while pending := [
            t for t in tuple(self._tasks) if not t.done() and t.get_loop() is loop and t is not me
        ]:
            await asyncio.wait(pending)

    async def aclose(self) -> None:
        """Refuse new top-level emissions, then wait for every accepted one.

        Emissions made by handlers of accepted emissions are still accepted, so
        a chain in progress finishes; once this returns, every emission is refused.
        """
        if runs_on(current_frame.get(), self):
            raise RuntimeError(
                "aclose() was called from a handler of this bus; it would wait for itself"
            )
        self._closing = True
        loop = asyncio.get_running_loop()
        while self._inflight:
            waiter: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._idle_waiters.append(waiter)
            try:
                if self._inflight:
                    await waiter
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._idle_waiters.remove(waiter)
        self._closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _route(self, name: str) -> Route:
        """Build (and cache) the route of a name that is not cached yet."""
        name = check_name(name)
        routes = self._routes  # read before the tables: see _routes' docstring
        known = routes.get(name)  # a str subclass's plain str may be cached
        if known is not None:
            return known
        if self._strict and name not in self._specs:
            raise UnknownEventError(
                f"strict bus {self._name!r}: event {name!r} is not declared; "
                f"{suggest(name, list(self._specs))}"
            )
        route = Route(
            name,
            list(self._subscriptions.items()),
            self._specs.get(name),
            self._mutes,
            self._taps,
        )
        if len(routes) >= _MAX_CACHED_ROUTES:
            routes.clear()  # in place: a newer table may have replaced this one meanwhile
        routes[name] = route
        return route

    def _admit(
        self, route: Route, payload: dict[str, Any], source: str | None, parent: Frame | None
    ) -> Event:
        """Make the event of an emission that needs checking, or refuse it.

        The caller has already counted the emission in ``_inflight``; the fast
        path (top-level, no payload check, no tap, no source, open bus)
        does not come here.
        """
        if source is not None and not isinstance(source, str):
            raise TypeError(f"source must be a str or None, not {type(source).__name__}")
        if parent is None:
            self._refuse_unless_admissible(route, payload, 0, None, None)
            fields: tuple[Any, ...] = (route.name, payload, source, next_serial(), None, 0, time())
        else:
            parent_event = parent[1]
            depth = parent_event.depth + 1
            self._refuse_unless_admissible(route, payload, depth, parent, parent)
            fields = (route.name, payload, source, next_serial(), parent_event.id, depth, time())
        event = new_event(Event, fields)
        if route.taps:
            self._show_taps(route.taps, event, parent)
        return event

    def _refuse_unless_admissible(
        self,
        route: Route,
        payload: Mapping[str, Any],
        depth: int,
        chain: Frame | None,
        emitter: Frame | None,
    ) -> None:
        """Raise if the bus refuses an emission of ``route`` at ``depth`` below
        ``chain``: closed (unless ``emitter`` is one of its handlers), a payload
        that fails its declaration, a loop."""
        name = route.name
        if self._closing:
            self._refuse_if_closed(name, emitter)
        if route.payload_check:
            check_payload(name, route.payload_check, payload)
        if chain is not None or depth:
            self._refuse_if_looping(route, depth, chain)

    async def emit_received(
        self, event: Event, /, *, chain: tuple[str, ...] = (), skip: Tap | None = None
    ) -> EmitReport:
        """Dispatch an event made elsewhere (another process), keeping its id,
        parent id, source, depth and timestamp.

        ``chain`` names the emissions that led to it over there, outermost
        first, so that a loop through processes is refused like a local one.
        It is checked like a top-level emission (closed bus, strict mode,
        payload, depth), and every tap but ``skip`` (the one it came through)
        sees it.
        """
        if not isinstance(event, Event):
            raise TypeError(f"emit_received() needs an Event, not {type(event).__name__}")
        route = self._route(event.name)
        ancestors = stand_in_chain(self, tuple(check_name(name) for name in chain), event)
        loop = _get_running_loop()
        if loop is not self._loop:
            self._adopt_loop(loop)
        self._inflight.append(None)
        try:  # top-level here, whatever its depth: no emitter among this bus's handlers
            self._refuse_unless_admissible(route, event.payload, event.depth, ancestors, None)
            taps = tuple(tap for tap in route.taps if tap is not skip)
            if taps:
                self._show_taps(taps, event, ancestors)
            return await self._deliver(route, event, ancestors)
        finally:
            self._finish_one()

    def _refuse_if_looping(self, route: Route, depth: int, parent: Frame | None) -> None:
        """Raise ``ReentrancyError`` if an emission at ``depth`` under ``parent`` is a loop."""
        name = route.name
        if depth > self._max_depth:
            reason = f"it would nest deeper than max_depth={self._max_depth}"
            self._refuse_loop(name, parent, reason)
        if not route.reentrant and loops_back(parent, self, name):
            self._refuse_loop(name, parent, "it is already being emitted in this chain")

    def _refuse_loop(self, name: str, parent: Frame | None, reason: str) -> None:
        chain = (*chain_names(parent), name)
        shown = " -> ".join(chain)
        self._log.error(
            "eventbus.loop_refused", bus=self._name, event_name=name, chain=shown, reason=reason
        )
        raise ReentrancyError(f"refused to emit {name!r}: {reason}: {shown}", chain)

    def _refuse_if_closed(self, name: str, parent: Frame | None) -> None:
        if self._closed or not runs_on(parent, self):
            raise BusClosedError(f"bus {self._name!r} is closed: emission of {name!r} refused")

    def _finish_one(self) -> None:
        """Count an emission as finished; wake ``aclose`` when none is left."""
        self._inflight.pop()
        if self._closing:
            self._wake_closers()

    def _wake_closers(self) -> None:
        if self._inflight:
            return
        with self._lock:
            waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    async def _deliver(self, route: Route, event: Event, parent: Frame | None) -> EmitReport:
        if route.calls:
            token = current_frame.set((self, event, parent))
            try:
                report = await dispatch(self, route, event)
            finally:
                current_frame.reset(token)
        else:
            report = new_report(EmitReport, (event, (), (), 0))
        gate = self._log
        if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
            self._log_emitted(report, route)
        return report

    def _published_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._finish_one()
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error(
                "eventbus.publish_failed", bus=self._name, task=task.get_name(), exc_info=error
            )

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Make ``loop`` (default: the running loop) the bus's home loop: where
        ``emit_sync`` from a thread with no running loop runs async handlers."""
        if loop is None:
            loop = _get_running_loop()
            if loop is None:
                raise RuntimeError("bind() with no argument needs a running event loop")
        elif not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"bind() needs an event loop, not {type(loop).__name__}")
        self._adopt_loop(loop)

    def _adopt_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Remember a loop this bus emits on: ``emit_sync`` from another thread
        runs async handlers there while it runs."""
        if loop is not None:
            self._loop = loop
            self._loops.add(loop)

    def _running_loop_elsewhere(self) -> asyncio.AbstractEventLoop | None:
        """A loop this bus emitted on that is still running (in another thread:
        the caller has none), the most recent first."""
        loop = self._loop
        if loop is not None and loop.is_running():
            return loop
        return next((other for other in list(self._loops) if other.is_running()), None)

    def _log_emitted(self, report: EmitReport, route: Route) -> None:
        event = report.event
        self._log.debug(
            "eventbus.emitted",
            bus=self._name,
            event_name=event.name,
            event_id=event.id,
            parent_id=event.parent_id,
            source=event.source,
            depth=event.depth,
            handlers=len(report.results),
            failed=report.failed,
            muted=route.muted,
            duration_ms=round(report.duration * 1000, 3),
        )

    def _handler_failed(
        self, event: Event, info: HandlerInfo, error: Exception
    ) -> Awaitable[Any] | None:
        """Log a handler's failure and pass it to ``on_error``; return what that
        returned if it must be awaited."""
        self._log.error(
            "eventbus.handler_failed",
            bus=self._name,
            event_name=event.name,
            event_id=event.id,
            handler=info.name,
            pattern=info.pattern,
            error_type=type(error).__qualname__,
            exc_info=error,
        )
        if self._on_error is None:
            return None
        try:
            result = self._on_error(event, info, error)
        except Exception as hook_error:
            self._error_hook_failed(event, hook_error)
            return None
        return result if result is not None and inspect.isawaitable(result) else None

    def _error_hook_failed(self, event: Event, error: BaseException) -> None:
        self._log.error(
            "eventbus.on_error_failed",
            bus=self._name,
            event_name=event.name,
            event_id=event.id,
            exc_info=error,
        )

    async def _await_error_hook(self, pending: Awaitable[Any], event: Event) -> None:
        try:
            await pending
        except Exception as error:
            self._error_hook_failed(event, error)

    def _finish_error_hook_later(self, pending: Awaitable[Any], event: Event) -> None:
        """Inside a running loop ``emit_sync`` cannot block: finish ``on_error``'s
        awaitable as a task that ``drain`` waits for."""
        self._inflight.append(None)  # aclose waits for it, like a published emission
        task = asyncio.ensure_future(self._await_error_hook(pending, event))
        self._tasks.add(task)
        task.add_done_callback(self._published_done)

    def _finish_error_hook_blocking(
        self, pending: Awaitable[Any], event: Event, runner: BlockingRunner
    ) -> None:
        try:
            runner.run(pending, None)
        except Exception as error:
            self._error_hook_failed(event, error)

    # ------------------------------------------------------------------ introspection

    def listeners(self, name: str) -> tuple[HandlerInfo, ...]:
        """Every subscription that could receive an event matching ``name`` (a
        name or a pattern), in dispatch order."""
        name = check_pattern(name)
        self._purge_collected()
        return tuple(
            dispatch_order(
                info
                for key, infos in list(self._subscriptions.items())
                if keys_overlap(key, name)
                for info in infos
                if info.alive
            )
        )

    def listener_count(self, name: str | None = None) -> int:
        """How many subscriptions ``listeners(name)`` lists; all of them when None."""
        if name is not None:
            return len(self.listeners(name))
        self._purge_collected()
        return sum(
            1 for infos in list(self._subscriptions.values()) for info in infos if info.alive
        )

    def has_listeners(self, name: str) -> bool:
        """Whether anything would receive ``name`` (cheap: check it before
        building an expensive payload)."""
        if type(name) is str:
            try:
                return self._routes[name].listening
            except KeyError:
                pass
        name = check_pattern(name)
        if is_pattern(name) or (self._strict and name not in self._specs):
            return bool(self.listeners(name))
        return self._route(name).listening

    def topics(self) -> tuple[str, ...]:
        """The names and patterns that have subscriptions, sorted."""
        self._purge_collected()
        return tuple(sorted(self._subscriptions))

    def describe(self) -> list[dict[str, Any]]:
        """A JSON-serialisable view of the topics and their handlers."""
        self._purge_collected()
        return [
            {
                "topic": key,
                "declared": self._is_declared(key),
                "handlers": [
                    {
                        "name": info.name,
                        "priority": info.priority,
                        "once": info.once,
                        "weak": info.weak,
                        "timeout": info.timeout,
                        "has_predicate": info.has_predicate,
                        "owner": info.owner,
                    }
                    for info in infos
                    if info.alive
                ],
            }
            for key, infos in sorted(self._subscriptions.items())
        ]

    @contextlib.contextmanager
    def record(self, pattern: str = "*") -> Iterator[Recorder]:
        """Record every emission matching ``pattern`` inside the block."""
        pattern = check_pattern(pattern)
        recorder = Recorder(pattern)
        tap = RecordingTap(recorder)
        self.add_tap(tap)
        try:
            yield recorder
        finally:
            self.remove_tap(tap)

    def add_tap(self, tap: Tap) -> None:
        """Show ``tap`` every emission it matches from now on, before its handlers
        run (see ``Tap``); the recorders of ``record()`` and the Redis bridge are taps."""
        with self._lock:
            self._taps = (*self._taps, tap)
            self._routes = {}

    def remove_tap(self, tap: Tap) -> None:
        """Stop showing emissions to ``tap`` (harmless if it was not added)."""
        with self._lock:
            self._taps = tuple(t for t in self._taps if t is not tap)
            self._routes = {}

    @staticmethod
    def _show_taps(taps: tuple[Tap, ...], event: Event, parent: Frame | None) -> None:
        """Every tap prepares first (any may refuse the emission), then all take."""
        chain = chain_names(parent)
        if len(taps) == 1:
            tap = taps[0]
            tap.take(tap.prepare(event, chain))
            return
        prepared = [tap.prepare(event, chain) for tap in taps]
        for tap, item in zip(taps, prepared, strict=True):
            tap.take(item)

    @contextlib.contextmanager
    def muted(self, *names: str) -> Iterator[None]:
        """Inside the block, emissions matching any of ``names`` (names or
        patterns; everything when none is given) run no handler."""
        patterns = tuple(check_pattern(name) for name in names) or ("*",)
        with self._lock:
            self._mutes = (*self._mutes, *patterns)
            self._routes = {}
        try:
            yield
        finally:
            with self._lock:
                mutes = list(self._mutes)
                for pattern in patterns:
                    mutes.remove(pattern)
                self._mutes = tuple(mutes)
                self._routes = {}
