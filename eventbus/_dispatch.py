"""The dispatch loops: calling one emission's handlers in order, each isolated.

There are two loops, one awaiting (``emit``, ``publish``) and one blocking
(``emit_sync``). They are kept as two copies on purpose: they differ only in
how a handler's awaitable is finished, and sharing the loop would put a
coroutine layer (or a callback) on every handler call. Per handler they
record one outcome and one clock mark; everything else a report shows is
derived from those when read (see ``_report``).

``EventBus.emit`` runs a copy of ``dispatch`` inline (an awaited emission
then makes one coroutine, not two): change both together.

They get what they need as arguments, not the bus: the route (the handlers,
resolved at subscribe time), the event, and the bus's ``Hooks``.
"""

from __future__ import annotations

import asyncio
import inspect
from asyncio.events import _get_running_loop
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from types import CoroutineType
from typing import Any, NoReturn, final

from ._blocking import BlockingRunner, finish_awaitable
from ._event import Event
from ._failures import Failures
from ._handlers import HandlerInfo
from ._report import SKIPPED, EmitReport, Failure, new_report
from ._routes import Route

__all__ = [
    "Hooks",
    "admit",
    "dispatch",
    "dispatch_sync",
    "finish_on_error_sync",
    "refuse_awaitable",
]

_isawaitable = inspect.isawaitable


@final
@dataclass(frozen=True, slots=True)
class Hooks:
    """What the dispatch loops call back, made once per bus."""

    failures: Failures
    """Logs a handler's failure and runs ``on_error``."""
    discard: Callable[[HandlerInfo], None]
    """Unsubscribes a once-subscription an emission has claimed."""
    loop_elsewhere: Callable[[], asyncio.AbstractEventLoop | None]
    """The bus's home loop if it runs (in another thread), for ``emit_sync``'s awaitables."""
    background: Callable[[], asyncio.AbstractEventLoop]
    """The bus's background loop (started on first need), when the home loop does not run."""


def admit(info: HandlerInfo, event: Event, hooks: Hooks) -> Callable[..., Any] | None:
    """The callable to run for a checked subscription, or None to skip it.

    Skips a collected weak handler, a false predicate and a once-subscription
    that another emission already claimed; claims (and unsubscribes) the once-
    subscription otherwise, and marks a weakly held one as run. A predicate's
    exception propagates to the caller.
    """
    handler = info.callback
    if handler is None:
        return None
    if info.has_predicate:
        predicate = info.predicate
        if predicate is None or not predicate(event):  # None: collected with its object
            return None
    if info.once:
        if not info.claim():
            return None
        hooks.discard(info)
    unused = info._unused
    if unused:
        unused.clear()  # it ran: no warning when its object is collected
    return handler


async def dispatch(route: Route, event: Event, hooks: Hooks) -> EmitReport:
    """Run the route's handlers one at a time, awaiting async ones."""
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
            if value is not None and (type(value) is CoroutineType or _isawaitable(value)):
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
    return new_report(EmitReport, (event, route.handlers, trace, failed))


def dispatch_sync(
    route: Route, event: Event, hooks: Hooks, in_loop: bool | None = None
) -> EmitReport:
    """Run the route's handlers one at a time, blocking.

    An awaitable result is finished on an event loop (see ``BlockingRunner``),
    except ``in_loop`` (None: asked only then): inside a running loop blocking
    on one is impossible, so it is the handler's failure.
    """
    trace: list[object] = [perf_counter()]
    add = trace.append
    failed = 0
    runner: BlockingRunner | None = None
    for direct, info in route.calls:
        try:
            handler = direct if direct is not None else admit(info, event, hooks)
            if handler is None:
                add(SKIPPED)
                add(perf_counter())
                continue
            value = handler(event)
            if value is not None and (type(value) is CoroutineType or _isawaitable(value)):
                if in_loop is None:
                    in_loop = _get_running_loop() is not None
                if in_loop:
                    refuse_awaitable(value, info)
                runner = runner or BlockingRunner(hooks.loop_elsewhere(), hooks.background)
                value = runner.run(value, info.timeout, info.name)
        except Exception as error:
            failed += 1
            add(Failure(error, perf_counter() - trace[-1]))  # type: ignore[operator]
            pending = hooks.failures.handler_failed(event, info, error)
            if pending is not None:
                if in_loop is None:
                    in_loop = _get_running_loop() is not None
                runner = finish_on_error_sync(hooks, pending, event, in_loop, runner)
        else:
            add(value)
        add(perf_counter())
    return new_report(EmitReport, (event, route.handlers, trace, failed))


def finish_on_error_sync(
    hooks: Hooks,
    pending: Awaitable[Any],
    event: Event,
    in_loop: bool,
    runner: BlockingRunner | None,
) -> BlockingRunner | None:
    """Finish ``on_error``'s awaitable for ``emit_sync``: as a task inside a
    running loop (blocking is impossible there), else blocking on ``runner``
    (made on first need); returns the runner for the next handlers."""
    if in_loop:
        hooks.failures.finish_later(pending, event)
        return runner
    runner = runner or BlockingRunner(hooks.loop_elsewhere(), hooks.background)
    hooks.failures.finish_blocking(pending, event, runner)
    return runner


def refuse_awaitable(value: Awaitable[Any], info: HandlerInfo) -> NoReturn:
    if isinstance(value, CoroutineType):
        value.close()  # never awaited on purpose: no "was never awaited" warning
    raise RuntimeError(
        f"handler {info.name} returned an awaitable, which emit_sync cannot await inside "
        "a running event loop; use `await bus.emit(...)` or `bus.publish(...)`"
    )
