"""Finishing a handler's awaitable from synchronous code (``emit_sync`` in a
thread with no running loop): on the bus's home loop if it runs (in another
thread), else on the bus's background loop, a daemon thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, Final, final

__all__ = ["BackgroundLoop", "BlockingRunner", "finish_awaitable", "timed_out"]

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

    They run on ``loop`` (the bus's home loop, running in another thread) if
    there is one, else on the bus's background loop (``background()`` starts it
    on first need); if the home loop stops before starting one, it goes to the
    background loop instead. The caller's context travels with them, so the
    chain of emissions carries on.
    """

    __slots__ = ("_background", "_loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        background: Callable[[], asyncio.AbstractEventLoop],
    ) -> None:
        self._loop = loop
        self._background = background

    def run(self, awaitable: Awaitable[Any], timeout: float | None, handler: str = "") -> Any:
        """Finish ``awaitable`` (the result of ``handler``, cancelled after
        ``timeout`` seconds) and return its result."""
        loop = self._loop
        if loop is None:
            loop = self._loop = self._background()
        try:
            return _wait_on(loop, awaitable, timeout, handler)
        except _NotStarted:  # that loop stopped first: run it on the background loop
            background = self._background()
            if background is loop:
                _discard(awaitable)
                raise RuntimeError(
                    "the bus's background loop stopped before running this async handler"
                ) from None
            self._loop = background
        try:
            return _wait_on(background, awaitable, timeout, handler)
        except _NotStarted:
            _discard(awaitable)
            raise RuntimeError(
                "the bus's background loop stopped before running this async handler"
            ) from None


def _discard(awaitable: Awaitable[Any]) -> None:
    if isinstance(awaitable, CoroutineType):
        awaitable.close()  # never started: no "was never awaited" warning


@final
class BackgroundLoop:
    """A bus's own event loop, run forever by a daemon thread: where ``emit_sync``
    runs async handlers while the bus has no running home loop.

    It holds no reference to the bus, so a finalizer of the bus may stop it.
    ``stopped`` is settled by the thread once the loop is closed.
    """

    __slots__ = ("loop", "stopped", "thread")

    def __init__(self, name: str) -> None:
        # Made in an empty context: its self-pipe reader keeps the context it is
        # made in, which would hold the emission that needed the loop forever.
        self.loop: Final = contextvars.Context().run(asyncio.new_event_loop)
        self.stopped: Final[concurrent.futures.Future[None]] = concurrent.futures.Future()
        self.thread: Final = threading.Thread(
            target=_run_forever, args=(self.loop, self.stopped), name=name, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        """Ask the loop to stop (from any thread); its thread then closes it."""
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self.loop.stop)

    def halt(self, timeout: float) -> None:
        """Stop the loop and wait up to ``timeout`` seconds for its thread (at exit)."""
        self.stop()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)


def _run_forever(loop: asyncio.AbstractEventLoop, stopped: concurrent.futures.Future[None]) -> None:
    """The background thread: run ``loop`` until stopped, then shut it down like
    ``asyncio.run`` does (pending tasks are cancelled)."""
    try:
        loop.run_forever()
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            stopped.set_result(None)
