"""``EventBus``: the public facade over the modules that do the work.

An emission flows through it like this: ``emit`` looks up the name's route
(``_routes``: the handlers, resolved at subscribe time), counts the emission
in flight (``_lifecycle``), makes its event (directly on the fast path, else
through ``_admission``: closed bus, payload, loops, taps), runs the handlers
(``_dispatch``, with failures reported by ``_failures``) and logs the outcome
(``_logging``). Subscriptions live in ``_table``, declarations in ``_catalog``.
"""

from __future__ import annotations

import asyncio
import contextlib
from asyncio.events import _get_running_loop
from collections.abc import Callable, Iterator
from threading import RLock
from time import time
from typing import Any, Final, Self, TypeVar, Unpack, final, overload

from ._admission import Admission
from ._catalog import EventSpec, make_spec
from ._chain import Frame, current_frame, runs_on
from ._checks import check_bus_options, check_count, check_timeout
from ._dispatch import Hooks, dispatch, dispatch_sync
from ._errors import safe_repr, scrubbed
from ._event import Event, new_event, next_serial
from ._failures import ErrorHook, Failures
from ._handlers import HandlerInfo, check_handler
from ._lifecycle import Lifecycle
from ._logging import BusLog, structlog_config
from ._names import check_name, check_pattern
from ._options import DEFAULTS, OnceOptions, Options, SubscribeOptions, options_from
from ._report import EmitReport, new_report
from ._routes import Route, Router
from ._taps import Tap
from ._testing import Recorder, RecordingTap

__all__ = ["EventBus"]

H = TypeVar("H", bound=Callable[[Event], object])


@final
class EventBus:
    """An in-process event bus: modules subscribe handlers to event names and
    emit events without importing each other.

    Handlers run one at a time in a deterministic order (priority, then
    subscription order), each isolated from the others' failures.
    """

    __slots__ = (
        "__weakref__",
        "_admission",
        "_gate",
        "_handler_timeout",
        "_hooks",
        "_lifecycle",
        "_log",
        "_name",
        "_router",
    )

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
        check_bus_options(name, strict, on_error)
        depth = check_count(max_depth, "max_depth", minimum=0)
        lock = RLock()
        log = BusLog(name, logger)
        lifecycle = Lifecycle(lock, log)
        router = Router(name, strict, lock, log.handler_collected_unused)
        self._name: Final = name
        self._log: Final = log
        self._gate: Final = log.gate
        self._handler_timeout: Final = check_timeout(handler_timeout, "handler_timeout")
        self._router: Final = router
        self._lifecycle: Final = lifecycle
        self._admission: Final = Admission(self, depth, lifecycle, log)
        failures = Failures(log, on_error, lifecycle)
        self._hooks: Final = Hooks(
            failures, router.table.discard, lifecycle.home_running, lifecycle.background
        )

    @property
    def name(self) -> str:
        """The bus's name, as its log entries show it."""
        return self._name

    @property
    def strict(self) -> bool:
        """Whether only declared events may be emitted and subscribed to."""
        return self._router.catalog.strict

    @property
    def max_depth(self) -> int:
        """The deepest nesting of emissions allowed (depths 0..max_depth run)."""
        return self._admission.max_depth

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` was called (new top-level emissions are
        refused), until ``reopen()``."""
        return self._lifecycle.closing

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<EventBus {self._name!r} subscriptions={self.listener_count()}{state}>"

    # ------------------------------------------------------------------ subscribing

    @overload
    def on(self, name: str, handler: H, **options: Unpack[SubscribeOptions]) -> H: ...
    @overload
    def on(
        self, name: str, handler: None = None, **options: Unpack[SubscribeOptions]
    ) -> Callable[[H], H]: ...
    def on(
        self, name: str, handler: H | None = None, **options: Unpack[SubscribeOptions]
    ) -> H | Callable[[H], H]:
        """Subscribe ``handler`` to an event name or pattern; return it unchanged.

        Without ``handler``, return a decorator that subscribes the function it
        decorates. Subscribing the same handler to the same name twice is a
        no-op that keeps the first subscription's options.

        Options (keywords): ``priority=0`` (higher runs first), ``once=False``
        (run at most once, ever), ``predicate=None`` (run only when
        ``predicate(event)`` is true), ``weak=None`` (bound methods weakly,
        anything else strongly), ``timeout=None`` (seconds an async handler may
        run; default the bus's ``handler_timeout``), ``owner=None`` (a tag for
        ``clear(owner=...)``).
        """
        if handler is not None and not options:  # the common case, with one call less
            self._subscribe(name, handler, DEFAULTS)
            return handler
        return self._on(name, handler, options_from(options, "on"))

    @overload
    def once(self, name: str, handler: H, **options: Unpack[OnceOptions]) -> H: ...
    @overload
    def once(
        self, name: str, handler: None = None, **options: Unpack[OnceOptions]
    ) -> Callable[[H], H]: ...
    def once(
        self, name: str, handler: H | None = None, **options: Unpack[OnceOptions]
    ) -> H | Callable[[H], H]:
        """``on(..., once=True)``: the handler runs at most once, ever."""
        return self._on(name, handler, options_from(options, "once"))

    def _on(self, name: str, handler: H | None, options: Options) -> H | Callable[[H], H]:
        if handler is not None:
            self._subscribe(name, handler, options)
            return handler
        key = self.check_subscribable(name)  # a bad name raises now, not when decorating

        def decorator(function: H) -> H:
            self._subscribe(key, function, options)
            return function

        return decorator

    def off(self, name: str, handler: Callable[..., Any]) -> bool:
        """Unsubscribe ``handler`` from exactly this name or pattern; True if it was."""
        key = check_pattern(name)
        if not callable(handler):
            check_handler(handler)  # raises, saying what it was given
        return self._router.table.off(key, handler)

    @contextlib.contextmanager
    def subscribed(self, name: str, handler: H, **options: Unpack[SubscribeOptions]) -> Iterator[H]:
        """Subscribe ``handler`` for the duration of a ``with`` block.

        A subscription that existed before the block is left in place.
        """
        info = self._subscribe(name, handler, options_from(options, "subscribed"))
        try:
            yield handler
        finally:
            if info is not None:
                self._router.table.discard(info)

    def clear(self, name: str | None = None, *, owner: str | None = None) -> int:
        """Drop subscriptions: all of them, those made with exactly ``name`` (a
        name or pattern), those of ``owner``, or those matching both. Returns
        how many were dropped."""
        key = None if name is None else check_pattern(name)
        if owner is not None and not isinstance(owner, str):
            raise TypeError(
                f"owner must be a str or None, not {type(owner).__name__}: {safe_repr(owner)}"
            )
        return self._router.table.clear(key, owner)

    def check_subscribable(self, key: str) -> str:
        """Return ``key`` as ``on()`` would accept it, or raise as ``on()`` would:
        ``TypeError``/``ValueError`` for a bad name or pattern, ``UnknownEventError``
        when a strict bus has no declared event it matches."""
        key = check_pattern(key)
        self._router.catalog.require_key(key)
        return key

    def _subscribe(
        self, key: str, handler: Callable[..., Any], options: Options
    ) -> HandlerInfo | None:
        """Register one subscription; None if the handler was already subscribed to ``key``."""
        if not callable(handler):
            check_handler(handler)  # raises, saying what it was given
        key = check_pattern(key)  # the handler's signature is checked by the table
        router = self._router
        if router.catalog.strict:
            router.catalog.require_key(key)
        return router.table.add(key, handler, options, self._handler_timeout)

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
        return self._router.catalog.declare(make_spec(name, description, payload, reentrant))

    def catalog(self) -> tuple[EventSpec, ...]:
        """Every declared event, sorted by name."""
        return self._router.catalog.sorted()

    # ------------------------------------------------------------------ emitting
    # emit and emit_sync repeat their glue on purpose: a shared helper would add
    # a call (and, for emit, a coroutine layer) to every emission; see benchmarks.

    async def emit(self, name: str, /, *, source: str | None = None, **payload: Any) -> EmitReport:
        """Run every matching handler in order, awaiting async ones; report how each fared."""
        router = self._router
        try:  # only a plain str may use the cache: anything else is checked first
            route = router.routes[name] if type(name) is str else router.route(name)
        except KeyError:
            try:
                route = router.route(name)
            except Exception as error:
                raise scrubbed(error) from None
        life = self._lifecycle
        loop = _get_running_loop()
        if loop is not life.loop:
            life.adopt(loop)
        parent = current_frame.get()
        inflight = life.inflight
        inflight.append(None)  # before reading closing: see Lifecycle.close
        try:
            if parent is None and route.plain and source is None and not life.closing:
                event = new_event(
                    Event, (route.name, payload, None, next_serial(), None, 0, time())
                )
            else:
                try:
                    event = self._admission.admit(route, payload, source, parent)
                except Exception as error:
                    del payload  # tracebacks rendered with locals must not show it
                    raise scrubbed(error)  # noqa: B904 - the same error, raised again
            del payload
            if route.calls:
                live = [True]  # cleared when the dispatch ends: see _chain.Frame
                token = current_frame.set((self, event, parent, live))
                try:
                    report = await dispatch(route, event, self._hooks)
                finally:
                    live[0] = False
                    current_frame.reset(token)
            else:
                report = new_report(EmitReport, (event, (), (), 0))
            gate = self._gate
            if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
                self._log.emitted(report, route.muted)
            return report
        finally:
            inflight.pop()
            if life.closing:
                life.wake_closers()

    def emit_sync(self, name: str, /, *, source: str | None = None, **payload: Any) -> EmitReport:
        """``emit`` for synchronous code.

        Outside a running loop, async handlers run on the bus's home loop if it
        runs (in another thread), else on the bus's background loop. Inside a
        running loop's thread, async handlers cannot be awaited: RuntimeError.
        """
        router = self._router
        try:  # only a plain str may use the cache: anything else is checked first
            route = router.routes[name] if type(name) is str else router.route(name)
        except KeyError:
            try:
                route = router.route(name)
            except Exception as error:
                raise scrubbed(error) from None
        life = self._lifecycle
        running = _get_running_loop()
        if running is not None and route.has_async:
            try:
                self._admission.refuse_async_in_loop(route, current_frame.get())
            except Exception as error:
                del payload
                raise scrubbed(error) from None
        parent = current_frame.get()
        inflight = life.inflight
        inflight.append(None)
        try:
            if parent is None and route.plain and source is None and not life.closing:
                event = new_event(
                    Event, (route.name, payload, None, next_serial(), None, 0, time())
                )
            else:
                try:
                    event = self._admission.admit(route, payload, source, parent)
                except Exception as error:
                    del payload  # tracebacks rendered with locals must not show it
                    raise scrubbed(error)  # noqa: B904 - the same error, raised again
            del payload
            if route.calls:
                live = [True]  # cleared when the dispatch ends: see _chain.Frame
                token = current_frame.set((self, event, parent, live))
                try:
                    report = dispatch_sync(route, event, self._hooks, running is not None)
                finally:
                    live[0] = False
                    current_frame.reset(token)
            else:
                report = new_report(EmitReport, (event, (), (), 0))
            gate = self._gate
            if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
                self._log.emitted(report, route.muted)
            return report
        finally:
            inflight.pop()
            if life.closing:
                life.wake_closers()

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
        try:
            route = self._router.route(name)
        except Exception as error:
            del payload
            raise scrubbed(error) from None
        life = self._lifecycle
        if loop is not life.loop:
            life.adopt(loop)
        parent = current_frame.get()
        life.inflight.append(None)  # counted until the task is done: see Lifecycle.keep
        try:
            try:
                event = self._admission.admit(route, payload, source, parent)
            except Exception as error:
                del payload
                raise scrubbed(error)  # noqa: B904 - the same error, raised again
            del payload
            task = loop.create_task(self._deliver(route, event, parent), name=f"eventbus:{name}")
        except BaseException:
            life.finish_one()
            raise
        life.keep(task, event)
        return task

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
        try:
            route = self._router.route(event.name).received
        except Exception as error:
            raise scrubbed(error) from None
        life = self._lifecycle
        life.adopt(_get_running_loop())
        life.inflight.append(None)
        try:
            try:
                ancestors = self._admission.receive(route, event, chain, skip)
            except Exception as error:
                raise scrubbed(error)  # noqa: B904 - the same error, raised again
            return await self._deliver(route, event, ancestors)
        finally:
            life.finish_one()

    async def _deliver(self, route: Route, event: Event, parent: Frame | None) -> EmitReport:
        """Dispatch an admitted event and log it (``publish``, ``emit_received``)."""
        if route.calls:
            live = [True]  # cleared when the dispatch ends: see _chain.Frame
            token = current_frame.set((self, event, parent, live))
            try:
                report = await dispatch(route, event, self._hooks)
            finally:
                live[0] = False
                current_frame.reset(token)
        else:
            report = new_report(EmitReport, (event, (), (), 0))
        gate = self._gate
        if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
            self._log.emitted(report, route.muted)
        return report

    # ------------------------------------------------------------------ lifecycle

    async def drain(self) -> None:
        """Wait until every published emission is done, whichever loop runs it,
        including those published while draining (not those of a closed loop)."""
        await self._lifecycle.drain()

    async def aclose(self) -> None:
        """Refuse new top-level emissions, then wait for every accepted one.

        Emissions made by handlers of accepted emissions are still accepted, so
        a chain in progress finishes; once this returns, every emission is
        refused (until ``reopen()``) and the bus's background loop (if it started
        one) has stopped. Called from inside an emission of this bus that is
        still running (a handler, or code it awaits), it would wait for itself:
        ``RuntimeError``. A task a handler started may call it once that
        emission has finished.
        """
        if runs_on(current_frame.get(), self):
            raise RuntimeError(
                "aclose() was called from a handler of this bus (inside an emission that "
                "is still running); it would wait for itself"
            )
        await self._lifecycle.close()

    def reopen(self) -> None:
        """Accept emissions again after ``aclose()``, subscriptions intact.

        Harmless on an open bus; while an ``aclose()`` is still waiting for
        accepted emissions it is a ``RuntimeError``.
        """
        self._lifecycle.reopen()

    async def __aenter__(self) -> Self:
        """Bind the bus to the running loop, reopening it if it was closed."""
        self._lifecycle.bind(None)
        self._lifecycle.reopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Make ``loop`` (default: the running loop) the bus's home loop: where
        ``emit_sync`` from a thread with no running loop runs async handlers.

        ``RuntimeError`` if the home loop is another loop that still runs, or
        with no argument outside a running loop; ``TypeError`` for a non-loop.
        """
        self._lifecycle.bind(loop)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The bus's home loop (see ``bind``), or None before it has one."""
        return self._lifecycle.loop

    # ------------------------------------------------------------------ introspection

    def listeners(self, name: str) -> tuple[HandlerInfo, ...]:
        """Every subscription that could receive an event matching ``name`` (a
        name or a pattern), in dispatch order."""
        return self._router.table.listeners(check_pattern(name))

    def listener_count(self, name: str | None = None) -> int:
        """How many subscriptions ``listeners(name)`` lists; all of them when None."""
        if name is not None:
            return len(self.listeners(name))
        return self._router.table.count()

    def has_listeners(self, name: str) -> bool:
        """Whether anything would receive ``name`` (cheap: check it before
        building an expensive payload)."""
        router = self._router
        if type(name) is str:
            try:
                return router.routes[name].listening
            except KeyError:
                pass
        return router.listening(check_pattern(name))

    def topics(self) -> tuple[str, ...]:
        """The names and patterns that have subscriptions, sorted."""
        return self._router.table.keys()

    def describe(self) -> list[dict[str, Any]]:
        """A JSON-serialisable view of the topics and their handlers."""
        return self._router.table.describe(self._router.catalog.is_declared)

    @contextlib.contextmanager
    def record(self, pattern: str = "*") -> Iterator[Recorder]:
        """Record every emission matching ``pattern`` inside the block."""
        recorder = Recorder(check_pattern(pattern))
        tap = RecordingTap(recorder)
        self.add_tap(tap)
        try:
            yield recorder
        finally:
            self.remove_tap(tap)

    @contextlib.contextmanager
    def muted(self, *names: str) -> Iterator[None]:
        """Inside the block, emissions matching any of ``names`` (names or
        patterns; everything when none is given) run no handler."""
        patterns = tuple(check_pattern(name) for name in names) or ("*",)
        self._router.mute(patterns)
        try:
            yield
        finally:
            self._router.unmute(patterns)

    def add_tap(self, tap: Tap) -> None:
        """Show ``tap`` every emission it matches from now on, before its handlers
        run (see ``Tap``); the recorders of ``record()`` and the Redis bridge are taps."""
        self._router.add_tap(tap)

    def remove_tap(self, tap: Tap) -> None:
        """Stop showing emissions to ``tap`` (harmless if it was not added)."""
        self._router.remove_tap(tap)
