"""Finishing a handler's awaitable from synchronous code (``emit_sync`` in a
thread with no running loop): on a loop the bus runs on in another thread,
else on a private loop made for the emission."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable
from types import CoroutineType
from typing import Any, final

__all__ = ["BlockingRunner", "finish_awaitable", "timed_out"]

_LOOP_CHECK_INTERVAL = 0.25
"""Seconds between checks that the loop running an ``emit_sync`` handler still runs."""


async def finish_awaitable(
    awaitable: Awaitable[Any], timeout: float | None, handler: str = ""
) -> Any:
    """Await a handler's result, cancelling it after ``timeout`` seconds (then
    raising ``TimeoutError`` naming ``handler`` and the limit)."""
    if timeout is None:
        return await awaitable
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await awaitable
    except TimeoutError as error:
        if not scope.expired():  # the handler's own TimeoutError
            raise
        raise timed_out(handler, timeout) from error


def timed_out(handler: str, timeout: float) -> TimeoutError:
    """The error a handler cancelled after ``timeout`` seconds fails with."""
    return TimeoutError(f"handler {handler} timed out after {timeout:g} s")


async def _finish_into(
    future: concurrent.futures.Future[Any],
    awaitable: Awaitable[Any],
    timeout: float | None,
    handler: str,
) -> None:
    """Run on another thread's loop and settle ``future`` from inside, so the
    waiting thread learns the outcome even if that loop stops right after."""
    if not future.set_running_or_notify_cancel():  # the waiting thread gave up first
        if isinstance(awaitable, CoroutineType):
            awaitable.close()
        return
    try:
        result = await finish_awaitable(awaitable, timeout, handler)
    except BaseException as error:
        future.set_exception(error)
        if not isinstance(error, Exception):
            raise
    else:
        future.set_result(result)


def _wait_on(
    loop: asyncio.AbstractEventLoop, awaitable: Awaitable[Any], timeout: float | None, handler: str
) -> Any:
    """Finish ``awaitable`` on ``loop`` (running in another thread) and return its
    result; raise ``_NotStarted`` if that loop stopped before it began."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    try:  # the task is made over there, in this thread's context (the chain goes along)
        loop.call_soon_threadsafe(_start_finishing, future, awaitable, timeout, handler)
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
    future: concurrent.futures.Future[Any],
    awaitable: Awaitable[Any],
    timeout: float | None,
    handler: str,
) -> None:
    task = asyncio.get_running_loop().create_task(_finish_into(future, awaitable, timeout, handler))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


class _NotStarted(Exception):
    """The loop an awaitable was handed to stopped before starting it."""


@final
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

    def run(self, awaitable: Awaitable[Any], timeout: float | None, handler: str = "") -> Any:
        """Finish ``awaitable`` (the result of ``handler``, cancelled after
        ``timeout`` seconds) and return its result."""
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                return _wait_on(loop, awaitable, timeout, handler)
            except _NotStarted:  # that loop stopped first: run it here instead
                self._loop = None
        if self._private is None:
            self._private = asyncio.new_event_loop()  # not set as the thread's loop
        return self._private.run_until_complete(finish_awaitable(awaitable, timeout, handler))

    def close(self) -> None:
        loop = self._private
        if loop is not None:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
