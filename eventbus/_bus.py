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
from collections.abc import Callable, Iterator, Mapping
from inspect import isawaitable
from threading import RLock
from time import perf_counter, time
from types import CoroutineType
from typing import Any, Final, Self, TypeVar, Unpack, final, overload

from ._admission import Admission
from ._blocking import finish_awaitable
from ._catalog import EventSpec, make_spec, topic_spec
from ._chain import Frame, current_frame, runs_on
from ._checks import check_bus_options, check_count, check_timeout
from ._deferred import DeferredScope, defer
from ._dispatch import Hooks, admit, dispatch, dispatch_sync
from ._errors import safe_repr, scrubbed
from ._event import Event, new_event, next_serial, with_payload
from ._failures import ErrorHook, Failures
from ._handlers import HandlerInfo, check_handler
from ._intercept import intercepted, intercepted_sync
from ._interceptors import NO_HEADERS, Interceptor, check_headers, check_interceptor
from ._lifecycle import Lifecycle
from ._logging import BusLog, structlog_config
from ._names import check_name, check_pattern
from ._options import DEFAULTS, OnceOptions, Options, SubscribeOptions, options_from
from ._report import SKIPPED, EmitReport, Failure, new_report
from ._routes import Route, Router
from ._taps import Confirmation, Tap, confirmed
from ._testing import Recorder, RecordingTap
from ._topic import Topic, TopicDecorator, resolve

__all__ = ["EventBus"]

H = TypeVar("H", bound=Callable[[Event], object])
T = TypeVar("T")
R = TypeVar("R")


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
    @overload
    def on(
        self,
        name: Topic[T],
        handler: Callable[[Event[T]], R],
        **options: Unpack[SubscribeOptions[T]],
    ) -> Callable[[Event[T]], R]: ...
    @overload
    def on(
        self, name: Topic[T], handler: None = None, **options: Unpack[SubscribeOptions[T]]
    ) -> TopicDecorator[T]: ...
    def on(
        self,
        name: str | Topic[Any],
        handler: Callable[..., Any] | None = None,
        **options: Unpack[SubscribeOptions[Any]],
    ) -> Any:
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

        ``name`` may be a ``Topic``: its name, and the type checker then accepts
        only handlers of ``Event[T]``.
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
    @overload
    def once(
        self, name: Topic[T], handler: Callable[[Event[T]], R], **options: Unpack[OnceOptions[T]]
    ) -> Callable[[Event[T]], R]: ...
    @overload
    def once(
        self, name: Topic[T], handler: None = None, **options: Unpack[OnceOptions[T]]
    ) -> TopicDecorator[T]: ...
    def once(
        self,
        name: str | Topic[Any],
        handler: Callable[..., Any] | None = None,
        **options: Unpack[OnceOptions[Any]],
    ) -> Any:
        """``on(..., once=True)``: the handler runs at most once, ever."""
        return self._on(name, handler, options_from(options, "once"))

    def _on(self, name: str | Topic[Any], handler: H | None, options: Options) -> Any:
        if handler is not None:
            self._subscribe(name, handler, options)
            return handler
        key = self.check_subscribable(name)  # a bad name raises now, not when decorating

        def decorator(function: H) -> H:
            self._subscribe(key, function, options)
            return function

        return decorator

    def off(self, name: str | Topic[Any], handler: Callable[..., Any]) -> bool:
        """Unsubscribe ``handler`` from exactly this name or pattern; True if it was."""
        key = check_pattern(name)
        if not callable(handler):
            check_handler(handler)  # raises, saying what it was given
        return self._router.table.off(key, handler)

    @overload
    def subscribed(
        self, name: str, handler: H, **options: Unpack[SubscribeOptions]
    ) -> contextlib.AbstractContextManager[H]: ...
    @overload
    def subscribed(
        self,
        name: Topic[T],
        handler: Callable[[Event[T]], R],
        **options: Unpack[SubscribeOptions[T]],
    ) -> contextlib.AbstractContextManager[Callable[[Event[T]], R]]: ...
    def subscribed(
        self, name: str | Topic[Any], handler: Any, **options: Unpack[SubscribeOptions[Any]]
    ) -> contextlib.AbstractContextManager[Any]:
        """Subscribe ``handler`` for the duration of a ``with`` block.

        A subscription that existed before the block is left in place.
        """
        return self._subscribed(name, handler, options_from(options, "subscribed"))

    @contextlib.contextmanager
    def _subscribed(self, name: str | Topic[Any], handler: H, options: Options) -> Iterator[H]:
        info = self._subscribe(name, handler, options)
        try:
            yield handler
        finally:
            if info is not None:
                self._router.table.discard(info)

    def clear(self, name: str | Topic[Any] | None = None, *, owner: str | None = None) -> int:
        """Drop subscriptions: all of them, those made with exactly ``name`` (a
        name or pattern), those of ``owner``, or those matching both. Returns
        how many were dropped."""
        key = None if name is None else check_pattern(name)
        if owner is not None and not isinstance(owner, str):
            raise TypeError(
                f"owner must be a str or None, not {type(owner).__name__}: {safe_repr(owner)}"
            )
        return self._router.table.clear(key, owner)

    def check_subscribable(self, key: str | Topic[Any]) -> str:
        """Return ``key`` as ``on()`` would accept it, or raise as ``on()`` would:
        ``TypeError``/``ValueError`` for a bad name or pattern, ``UnknownEventError``
        when a strict bus has no declared event it matches."""
        key = check_pattern(key)
        self._router.catalog.require_key(key)
        return key

    def _subscribe(
        self, key: str | Topic[Any], handler: Callable[..., Any], options: Options
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
        name: str | Topic[Any],
        *,
        description: str = "",
        payload: Mapping[str, Any] | type | None = None,
        reentrant: bool = False,
    ) -> EventSpec:
        """Declare an event: its description, required payload types (or data
        type: dataclass, ``TypedDict``, pydantic model), re-entrancy.

        A ``Topic`` brings its own description, data type and re-entrancy.
        Declaring the same event again with the same spec is harmless; with a
        different spec it is a ``ValueError``.
        """
        if isinstance(name, Topic):
            return self._router.catalog.declare(topic_spec(name, description, payload, reentrant))
        name = check_name(name)
        return self._router.catalog.declare(make_spec(name, description, payload, reentrant))

    def catalog(self) -> tuple[EventSpec, ...]:
        """Every declared event, sorted by name."""
        return self._router.catalog.sorted()

    # ------------------------------------------------------------------ emitting
    # emit and emit_sync repeat their glue on purpose: a shared helper would add
    # a call (and, for emit, a coroutine layer) to every emission; see benchmarks.

    @overload
    async def emit(
        self, name: str, /, *, source: str | None = None, **payload: Any
    ) -> EmitReport: ...
    @overload
    async def emit(
        self, name: Topic[T], data: T, /, *, source: str | None = None
    ) -> EmitReport: ...
    @overload
    async def emit(
        self, name: Topic[Any], /, *, source: str | None = None, **fields: Any
    ) -> EmitReport: ...
    async def emit(
        self,
        name: str | Topic[Any],
        data: object = None,
        /,
        *,
        source: str | None = None,
        **payload: Any,
    ) -> EmitReport:
        """Run every matching handler in order, awaiting async ones; report how each fared.

        With a ``Topic``: ``emit(topic, data)`` or ``emit(topic, **fields)``;
        the data is built and checked before any handler runs (``PayloadError``).
        """
        router = self._router
        try:  # only a plain str may use the cache: anything else is checked first
            if type(name) is str and data is None:
                route = router.routes[name]
            else:  # a topic, or a name to check: see _resolve
                route, payload = self._resolve(name, data, payload)
        except KeyError:
            try:
                route = router.route(name)
            except Exception as error:
                raise scrubbed(error) from None
        if (
            route.quiet
            and source is None
            and current_frame.get() is None
            and not (life := self._lifecycle).closing
        ):  # nobody listens: the event is made only if the report's is read
            loop = _get_running_loop()
            if loop is not life.loop:
                life.adopt(loop)
            report = new_report(
                EmitReport, ((route.name, payload, None, next_serial(), None, 0, time()), (), (), 0)
            )
            gate = self._gate
            if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
                self._log.emitted(report, route.muted)
            return report
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
                    if route.confirms:  # a tap's confirmation is awaited before dispatch
                        event = await self._admission.admit_confirmed(
                            route, payload, source, parent
                        )
                    else:
                        event = self._admission.admit(route, payload, source, parent)
                except Exception as error:
                    del payload  # tracebacks rendered with locals must not show it
                    raise scrubbed(error)  # noqa: B904 - the same error, raised again
            del payload
            if route.intercept is not None:
                report = await intercepted(route.intercept, self, route, event, parent, self._hooks)
            elif route.calls:
                live = [True]  # cleared when the dispatch ends: see _chain.Frame
                token = current_frame.set((self, event, parent, live))
                try:  # _dispatch.dispatch, inlined: no second coroutine per emission
                    hooks = self._hooks
                    trace: list[object] = [perf_counter()]
                    add = trace.append
                    failed = 0
                    for direct, info in route.calls:
                        try:
                            handler = direct if direct is not None else admit(info, event, hooks)
                            if handler is None:
                                add(SKIPPED)
                                add(perf_counter())
                                continue
                            value = handler(event)
                            if value is not None and (
                                type(value) is CoroutineType or isawaitable(value)
                            ):
                                timeout = info.timeout
                                if timeout is None:
                                    value = await value
                                else:
                                    value = await finish_awaitable(value, timeout, info.name)
                        except Exception as error:
                            failed += 1
                            add(Failure(error, perf_counter() - trace[-1]))  # type: ignore[operator]
                            pending = hooks.failures.handler_failed(event, info, error)
                            if pending is not None:
                                await hooks.failures.finish(pending, event)
                        else:
                            add(value)
                        add(perf_counter())
                    report = new_report(EmitReport, (event, route.handlers, trace, failed))
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

    @overload
    def emit_sync(
        self, name: str, /, *, source: str | None = None, **payload: Any
    ) -> EmitReport: ...
    @overload
    def emit_sync(self, name: Topic[T], data: T, /, *, source: str | None = None) -> EmitReport: ...
    @overload
    def emit_sync(
        self, name: Topic[Any], /, *, source: str | None = None, **fields: Any
    ) -> EmitReport: ...
    def emit_sync(
        self,
        name: str | Topic[Any],
        data: object = None,
        /,
        *,
        source: str | None = None,
        **payload: Any,
    ) -> EmitReport:
        """``emit`` for synchronous code.

        Outside a running loop, async handlers run on the bus's home loop if it
        runs (in another thread), else on the bus's background loop. Inside a
        running loop's thread, async handlers cannot be awaited: RuntimeError.
        """
        router = self._router
        try:  # only a plain str may use the cache: anything else is checked first
            if type(name) is str and data is None:
                route = router.routes[name]
            else:  # a topic, or a name to check: see _resolve
                route, payload = self._resolve(name, data, payload)
        except KeyError:
            try:
                route = router.route(name)
            except Exception as error:
                raise scrubbed(error) from None
        if (
            route.quiet
            and source is None
            and current_frame.get() is None
            and not self._lifecycle.closing
        ):  # nobody listens: the event is made only if the report's is read
            report = new_report(
                EmitReport, ((route.name, payload, None, next_serial(), None, 0, time()), (), (), 0)
            )
            gate = self._gate
            if gate.may_debug or gate.seen_wrapper is not structlog_config.default_wrapper_class:
                self._log.emitted(report, route.muted)
            return report
        life = self._lifecycle
        parent = current_frame.get()
        if route.needs_loop and _get_running_loop() is not None:
            try:
                self._admission.refuse_async_in_loop(route, parent)
            except Exception as error:
                del payload
                raise scrubbed(error) from None
        inflight = life.inflight
        inflight.append(None)
        try:
            if parent is None and route.plain and source is None and not life.closing:
                event = new_event(
                    Event, (route.name, payload, None, next_serial(), None, 0, time())
                )
            else:
                try:
                    if route.confirms:  # a tap's confirmation is waited for before dispatch
                        event = self._admission.admit_blocking(route, payload, source, parent)
                    else:
                        event = self._admission.admit(route, payload, source, parent)
                except Exception as error:
                    del payload  # tracebacks rendered with locals must not show it
                    raise scrubbed(error)  # noqa: B904 - the same error, raised again
            del payload
            if route.intercept is not None:
                in_loop = _get_running_loop() is not None
                report = intercepted_sync(
                    route.intercept, self, route, event, parent, self._hooks, in_loop
                )
            elif route.calls:
                live = [True]  # cleared when the dispatch ends: see _chain.Frame
                token = current_frame.set((self, event, parent, live))
                try:
                    report = dispatch_sync(route, event, self._hooks)
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

    @overload
    def publish(
        self, name: str, /, *, source: str | None = None, **payload: Any
    ) -> asyncio.Task[EmitReport]: ...
    @overload
    def publish(
        self, name: Topic[T], data: T, /, *, source: str | None = None
    ) -> asyncio.Task[EmitReport]: ...
    @overload
    def publish(
        self, name: Topic[Any], /, *, source: str | None = None, **fields: Any
    ) -> asyncio.Task[EmitReport]: ...
    def publish(
        self,
        name: str | Topic[Any],
        data: object = None,
        /,
        *,
        source: str | None = None,
        **payload: Any,
    ) -> asyncio.Task[EmitReport]:
        """Emit in a new task (fire and forget); ``drain()`` waits for it.

        Refusals (loops, payload, strict, closed) raise here, not in the task.
        """
        loop = _get_running_loop()
        if loop is None:
            raise RuntimeError(
                "publish() needs a running event loop; from synchronous code use emit_sync()"
            )
        if type(name) is str and data is None:
            try:
                route = self._router.route(name)
            except Exception as error:
                del payload
                raise scrubbed(error) from None
        else:
            route, payload = self._resolve(name, data, payload)
        life = self._lifecycle
        if loop is not life.loop:
            life.adopt(loop)
        parent = current_frame.get()
        life.inflight.append(None)  # counted until the task is done: see Lifecycle.keep
        try:
            waits: list[Confirmation] | None = [] if route.confirms else None
            try:
                event = self._admission.admit(route, payload, source, parent, waits)
            except Exception as error:
                del payload
                raise scrubbed(error)  # noqa: B904 - the same error, raised again
            del payload
            task = loop.create_task(
                self._deliver(route, event, parent, waits=waits), name=f"eventbus:{route.name}"
            )
        except BaseException:
            life.finish_one()
            raise
        life.keep(task, event)
        return task

    def _resolve(
        self, name: object, data: object, payload: dict[str, Any]
    ) -> tuple[Route, dict[str, Any]]:
        """The route and payload of an emission not made with a plain ``str`` name
        and keywords: a topic (its data built and checked, see ``_topic.resolve``),
        a ``str`` subclass, or a bad name (raised, scrubbed)."""
        router = self._router
        try:
            name, payload = resolve(name, data, payload, router.catalog.specs)
            route = router.routes.get(name) if type(name) is str else None
            return route or router.route(name), payload
        except Exception as error:
            del payload
            raise scrubbed(error) from None

    def deferred(self) -> DeferredScope:
        """A scope whose deferred emissions (``defer``) run only if its block
        succeeds: ``with bus.deferred() as scope:`` or ``async with``.

        When the outermost scope exits without an exception, the held emissions
        run in the order they were deferred (``async with``: awaited ``emit``;
        ``with``: ``emit_sync`` and its rules) and ``scope.reports`` lists their
        reports; a scope opened inside another joins it. When the block raises,
        they are discarded (logged at info) and the exception propagates.
        """
        return DeferredScope(self)

    @overload
    def defer(self, name: str, /, *, source: str | None = None, **payload: Any) -> None: ...
    @overload
    def defer(self, name: Topic[T], data: T, /, *, source: str | None = None) -> None: ...
    @overload
    def defer(self, name: Topic[Any], /, *, source: str | None = None, **fields: Any) -> None: ...
    def defer(
        self,
        name: str | Topic[Any],
        data: object = None,
        /,
        *,
        source: str | None = None,
        **payload: Any,
    ) -> None:
        """Check an emission now (name, strict mode, payload: errors raise here)
        and hold it until the innermost open ``deferred()`` scope of this bus in
        the current context succeeds. ``RuntimeError`` when no scope is open."""
        try:
            defer(self, self._router, self._admission, name, data, source, payload)
        except Exception as error:
            del payload  # tracebacks rendered with locals must not show it
            raise scrubbed(error) from None

    async def emit_received(
        self,
        event: Event,
        /,
        *,
        chain: tuple[str, ...] = (),
        skip: Tap | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EmitReport:
        """Dispatch an event made elsewhere (another process), keeping its id,
        parent id, source, depth and timestamp.

        ``chain`` names the emissions that led to it over there, outermost
        first, so that a loop through processes is refused like a local one.
        It is checked like a top-level emission (closed bus, strict mode,
        payload, depth), and every tap but ``skip`` (the one it came through)
        sees it. A name declared here with a data type gets its ``event.data``
        rebuilt from that declaration (``PayloadError`` when the payload does not fit).
        ``headers`` are what ``outgoing_headers`` gave over there (a trace
        context): the bus's interceptors receive them.
        """
        if not isinstance(event, Event):
            raise TypeError(f"emit_received() needs an Event, not {type(event).__name__}")
        carried = NO_HEADERS if headers is None else check_headers(headers)
        try:
            route = self._router.route(event.name).received
            if route.shape is not None:  # rebuild the data from this bus's declaration
                event = with_payload(event, route.shape.fit(route.name, event.payload))
        except Exception as error:
            raise scrubbed(error) from None
        life = self._lifecycle
        life.adopt(_get_running_loop())
        life.inflight.append(None)
        try:
            waits: list[Confirmation] | None = [] if route.confirms else None
            try:
                ancestors = self._admission.receive(route, event, chain, skip, waits)
            except Exception as error:
                raise scrubbed(error)  # noqa: B904 - the same error, raised again
            return await self._deliver(route, event, ancestors, carried, waits)
        finally:
            life.finish_one()

    def outgoing_headers(self, event: Event) -> dict[str, str]:
        """Headers a bridge sends along with ``event`` to another process, where
        ``emit_received(..., headers=...)`` hands them to that bus's
        interceptors: what this bus's interceptors' ``outgoing`` return (a
        trace context), empty when none applies."""
        if not isinstance(event, Event):
            raise TypeError(f"outgoing_headers() needs an Event, not {type(event).__name__}")
        intercept = self._router.route(event.name).intercept
        return {} if intercept is None else intercept.headers(event)

    async def _deliver(
        self,
        route: Route,
        event: Event,
        parent: Frame | None,
        headers: Mapping[str, str] = NO_HEADERS,
        waits: list[Confirmation] | None = None,
    ) -> EmitReport:
        """Dispatch an admitted event and log it (``publish``, ``emit_received``),
        once its taps' confirmations (``waits``) are in."""
        if waits:
            await confirmed(waits)
        if route.intercept is not None:
            intercept = route.intercept
            report = await intercepted(intercept, self, route, event, parent, self._hooks, headers)
        elif route.calls:
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

    def listeners(self, name: str | Topic[Any]) -> tuple[HandlerInfo, ...]:
        """Every subscription that could receive an event matching ``name`` (a
        name or a pattern), in dispatch order."""
        return self._router.table.listeners(check_pattern(name))

    def listener_count(self, name: str | Topic[Any] | None = None) -> int:
        """How many subscriptions ``listeners(name)`` lists; all of them when None."""
        if name is not None:
            return len(self.listeners(name))
        return self._router.table.count()

    def has_listeners(self, name: str | Topic[Any]) -> bool:
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
    def record(self, pattern: str | Topic[Any] = "*") -> Iterator[Recorder]:
        """Record every emission matching ``pattern`` inside the block."""
        recorder = Recorder(check_pattern(pattern))
        tap = RecordingTap(recorder)
        self.add_tap(tap)
        try:
            yield recorder
        finally:
            self.remove_tap(tap)

    @contextlib.contextmanager
    def muted(self, *names: str | Topic[Any]) -> Iterator[None]:
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

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Run ``interceptor``'s hooks around every emission it matches from now
        on (see ``Interceptor``); adding it again is harmless."""
        self._router.add_interceptor(check_interceptor(interceptor))

    def remove_interceptor(self, interceptor: Interceptor) -> None:
        """Stop running ``interceptor``'s hooks (harmless if it was not added)."""
        self._router.remove_interceptor(interceptor)
