"""The dispatch loop: calling one emission's handlers in order, each isolated.

There are two loops, one awaiting (``emit``, ``publish``) and one blocking
(``emit_sync``); they differ only in how a handler's awaitable is finished.
Per handler they record one outcome and one clock mark; everything else a
report shows is derived from those when read (see ``_report``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Awaitable, Callable
from time import perf_counter
from types import CoroutineType
from typing import TYPE_CHECKING, Any, NoReturn

from ._event import Event
from ._handlers import HandlerInfo
from ._report import SKIPPED, EmitReport, Failure, new_report
from ._routes import Route

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ["BlockingRunner", "dispatch", "dispatch_sync", "finish_awaitable"]

_isawaitable = inspect.isawaitable
_LOOP_CHECK_INTERVAL = 0.25
"""Seconds between checks that the loop running an ``emit_sync`` handler still runs."""


def _admit(bus: EventBus, info: HandlerInfo, event: Event) -> Callable[..., Any] | None:
    """The callable to run for a checked subscription, or None to skip it.

    Skips a collected weak handler, a false predicate and a once-subscription
    that another emission already claimed; claims (and unsubscribes) the once-
    subscription otherwise. A predicate's exception propagates to the caller.
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
    in_loop: bool,
) -> EmitReport:
    """Run the route's handlers one at a time, blocking.

    An awaitable result is finished on an event loop (see ``BlockingRunner``),
    except ``in_loop``: inside a running loop blocking on one is impossible, so
    it is the handler's failure.
    """
    trace: list[object] = [perf_counter()]
    add = trace.append
    failed = 0
    runner: BlockingRunner | None = None
    try:
        for direct, info in route.calls:
            try:
                handler = direct if direct is not None else _admit(bus, info, event)
                if handler is None:
                    add(SKIPPED)
                    add(perf_counter())
                    continue
                value = handler(event)
                if value is not None and (type(value) is CoroutineType or _isawaitable(value)):
                    if in_loop:
                        _refuse_awaitable(value, info)
                    runner = runner or BlockingRunner(bus._running_loop_elsewhere())
                    value = runner.run(value, info.timeout)
            except Exception as error:
                failed += 1
                add(Failure(error, perf_counter() - trace[-1]))  # type: ignore[operator]
                pending = bus._handler_failed(event, info, error)
                if pending is not None:
                    if in_loop:
                        bus._finish_error_hook_later(pending, event)
                    else:
                        runner = runner or BlockingRunner(bus._running_loop_elsewhere())
                        bus._finish_error_hook_blocking(pending, event, runner)
            else:
                add(value)
            add(perf_counter())
    finally:
        if runner is not None:
            runner.close()
    return new_report(EmitReport, (event, route.handlers, trace, failed))


def _refuse_awaitable(value: Awaitable[Any], info: HandlerInfo) -> NoReturn:
    if isinstance(value, CoroutineType):
        value.close()  # never awaited on purpose: no "was never awaited" warning
    raise RuntimeError(
        f"handler {info.name} returned an awaitable, which emit_sync cannot await inside "
        "a running event loop; use `await bus.emit(...)` or `bus.publish(...)`"
    )


async def _finish_into(
    future: concurrent.futures.Future[Any], awaitable: Awaitable[Any], timeout: float | None
) -> None:
    """Run on another thread's loop and settle ``future`` from inside, so the
    waiting thread learns the outcome even if that loop stops right after."""
    if not future.set_running_or_notify_cancel():  # the waiting thread gave up first
        if isinstance(awaitable, CoroutineType):
            awaitable.close()
        return
    try:
        result = await finish_awaitable(awaitable, timeout)
    except BaseException as error:
        future.set_exception(error)
        if not isinstance(error, Exception):
            raise
    else:
        future.set_result(result)


def _wait_on(
    loop: asyncio.AbstractEventLoop, awaitable: Awaitable[Any], timeout: float | None
) -> Any:
    """Finish ``awaitable`` on ``loop`` (running in another thread) and return its
    result; raise ``_NotStarted`` if that loop stopped before it began."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    try:  # the task is made over there, in this thread's context (the chain goes along)
        loop.call_soon_threadsafe(_start_finishing, future, awaitable, timeout)
    except RuntimeError:  # the loop closed meanwhile
        raise _NotStarted from None
    while not concurrent.futures.wait((future,), timeout=_LOOP_CHECK_INTERVAL).done:
        if not loop.is_running():
            if future.cancel():
                raise _NotStarted
            raise RuntimeError(
                "the event loop running this async handler stopped before it finished"
            )
    try:
        return future.result()
    except concurrent.futures.CancelledError:  # cancelled by us: it never started
        raise _NotStarted from None


_finishing: set[asyncio.Task[None]] = set()
"""Tasks started by ``_start_finishing``, referenced until done."""


def _start_finishing(
    future: concurrent.futures.Future[Any], awaitable: Awaitable[Any], timeout: float | None
) -> None:
    task = asyncio.get_running_loop().create_task(_finish_into(future, awaitable, timeout))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


class _NotStarted(Exception):
    """The loop an awaitable was handed to stopped before starting it."""


class BlockingRunner:
    """Finishes awaitables for ``emit_sync`` in a thread with no running loop.

    They run on ``loop`` (a loop the bus emitted on, still running in another
    thread) if there is one, else on a private loop made on first use and
    closed with the emission. The caller's context travels with them, so the
    chain of emissions carries on.
    """

    __slots__ = ("_loop", "_private")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._private: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[Any], timeout: float | None) -> Any:
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                return _wait_on(loop, awaitable, timeout)
            except _NotStarted:  # that loop stopped first: run it here instead
                self._loop = None
        if self._private is None:
            self._private = asyncio.new_event_loop()  # not set as the thread's loop
        return self._private.run_until_complete(finish_awaitable(awaitable, timeout))

    def close(self) -> None:
        loop = self._private
        if loop is not None:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
