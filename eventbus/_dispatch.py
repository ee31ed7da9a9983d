"""The dispatch loop: calling one emission's handlers in order, each isolated.

There are two loops, one awaiting (``emit``, ``publish``) and one blocking
(``emit_sync``); they differ only in how a handler's awaitable is finished.
Per handler they record one outcome and one clock mark; everything else a
report shows is derived from those when read (see ``_report``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from time import perf_counter
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from ._event import Event
from ._handlers import HandlerInfo
from ._report import SKIPPED, EmitReport, Failure, new_report
from ._routes import Route

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ["dispatch", "dispatch_sync", "finish_awaitable"]

_isawaitable = inspect.isawaitable


def _admit(bus: EventBus, info: HandlerInfo, event: Event) -> Callable[..., Any] | None:
    """The callable to run for a checked subscription, or None to skip it.

    Skips a collected weak handler, a false predicate and a once-subscription
    that another emission already claimed; claims (and unsubscribes) the once-
    subscription otherwise. A predicate's exception propagates to the caller.
    """
    handler = info.callback
    if handler is None:
        return None
    predicate = info._predicate
    if predicate is not None and not predicate(event):
        return None
    if info.once:
        if not info.claim():
            return None
        bus._discard(info)
    return handler


async def finish_awaitable(awaitable: Awaitable[Any], timeout: float | None) -> Any:
    """Await a handler's result, cancelling it after ``timeout`` seconds."""
    if timeout is None:
        return await awaitable
    async with asyncio.timeout(timeout):
        return await awaitable


async def dispatch(bus: EventBus, route: Route, event: Event) -> EmitReport:
    """Run the route's handlers one at a time, awaiting async ones."""
    trace: list[object] = [perf_counter()]
    add = trace.append
    failed = 0
    for direct, info in route.calls:
        try:
            handler = direct if direct is not None else _admit(bus, info, event)
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
                    async with asyncio.timeout(timeout):
                        value = await value
        except Exception as error:
            failed += 1
            add(Failure(error, perf_counter() - trace[-1]))  # type: ignore[operator]
            pending = bus._handler_failed(event, info, error)
            if pending is not None:
                await bus._await_error_hook(pending, event)
        else:
            add(value)
        add(perf_counter())
    return new_report(EmitReport, (event, route.handlers, trace, failed))


def dispatch_sync(
    bus: EventBus,
    route: Route,
    event: Event,
    run: Callable[[Awaitable[Any], float | None], Any] | None,
) -> EmitReport:
    """Run the route's handlers one at a time, blocking.

    ``run`` finishes an awaitable on some event loop; it is None inside a
    running loop, where blocking on one is impossible, so an awaitable result
    there is the handler's failure.
    """
    trace: list[object] = [perf_counter()]
    add = trace.append
    failed = 0
    for direct, info in route.calls:
        try:
            handler = direct if direct is not None else _admit(bus, info, event)
            if handler is None:
                add(SKIPPED)
                add(perf_counter())
                continue
            value = handler(event)
            if value is not None and (type(value) is CoroutineType or _isawaitable(value)):
                value = _finish_blocking(value, info, run)
        except Exception as error:
            failed += 1
            add(Failure(error, perf_counter() - trace[-1]))  # type: ignore[operator]
            pending = bus._handler_failed(event, info, error)
            if pending is not None:
                bus._finish_error_hook_blocking(pending, event, run)
        else:
            add(value)
        add(perf_counter())
    return new_report(EmitReport, (event, route.handlers, trace, failed))


def _finish_blocking(
    value: Awaitable[Any],
    info: HandlerInfo,
    run: Callable[[Awaitable[Any], float | None], Any] | None,
) -> Any:
    if run is not None:
        return run(value, info.timeout)
    if isinstance(value, CoroutineType):
        value.close()  # never awaited on purpose: no "was never awaited" warning
    raise RuntimeError(
        f"handler {info.name} returned an awaitable, which emit_sync cannot await inside "
        "a running event loop; use `await bus.emit(...)` or `bus.publish(...)`"
    )
