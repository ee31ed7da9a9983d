"""What a bus has under way and where: emissions in flight, published tasks,
the loops it runs on, and closing (``drain``/``aclose``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Final, final

__all__ = ["Lifecycle"]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@final
class Lifecycle:
    """Counts emissions in flight and keeps published tasks, so that ``aclose``
    can refuse new emissions and wait for the accepted ones.

    ``inflight`` has one entry per emission under way (``list.append`` and
    ``pop`` are atomic, so threads need no lock); ``closing`` is read on every
    emission and set once by ``aclose``.
    """

    __slots__ = (
        "_idle_waiters",
        "_lock",
        "_loops",
        "_task_failed",
        "closed",
        "closing",
        "inflight",
        "loop",
        "tasks",
    )

    def __init__(
        self, lock: threading.RLock, task_failed: Callable[[asyncio.Task[Any], BaseException], None]
    ) -> None:
        self._lock: Final = lock
        self._task_failed: Final = task_failed
        self.inflight: Final[list[None]] = []
        self.closing = False
        """``aclose`` was called: new top-level emissions are refused."""
        self.closed = False
        """``aclose`` finished: every emission is refused."""
        self._idle_waiters: list[asyncio.Future[None]] = []
        self.tasks: Final[set[asyncio.Task[Any]]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        """The last loop the bus ran on, where ``emit_sync`` runs async handlers."""
        self._loops: Final[weakref.WeakSet[asyncio.AbstractEventLoop]] = weakref.WeakSet()

    # ------------------------------------------------------------------ loops

    def adopt(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Remember a loop the bus runs on: ``emit_sync`` from another thread
        runs async handlers there while it runs."""
        if loop is not None:
            self.loop = loop
            self._loops.add(loop)

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """``bus.bind()``: adopt ``loop``, by default the running one."""
        if loop is None:
            loop = asyncio.events._get_running_loop()
            if loop is None:
                raise RuntimeError("bind() with no argument needs a running event loop")
        elif not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"bind() needs an event loop, not {type(loop).__name__}")
        self.adopt(loop)

    def running_loop_elsewhere(self) -> asyncio.AbstractEventLoop | None:
        """A loop the bus ran on that is still running (in another thread: the
        caller has none), the most recent first."""
        loop = self.loop
        if loop is not None and loop.is_running():
            return loop
        return next((other for other in list(self._loops) if other.is_running()), None)

    # ------------------------------------------------------------------ in flight

    def finish_one(self) -> None:
        """Count an emission as finished; wake ``aclose`` when none is left."""
        self.inflight.pop()
        if self.closing:
            self.wake_closers()

    def wake_closers(self) -> None:
        if self.inflight:
            return
        with self._lock:
            waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a task already counted in ``inflight`` until it is done; ``drain``
        and ``aclose`` wait for it."""
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def run_later(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` as a task of the running loop that ``aclose`` waits for."""
        self.inflight.append(None)
        self.keep(asyncio.ensure_future(work))

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        self.finish_one()
        if not task.cancelled() and (error := task.exception()) is not None:
            self._task_failed(task, error)

    # ------------------------------------------------------------------ closing

    async def drain(self) -> None:
        """Wait until every kept task of this loop is done, including those
        added while draining."""
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()  # a published handler draining must not wait for itself
        while pending := [
            task
            for task in tuple(self.tasks)
            if not task.done() and task.get_loop() is loop and task is not me
        ]:
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Refuse new top-level emissions, then wait until none is in flight."""
        self.closing = True
        loop = asyncio.get_running_loop()
        while self.inflight:
            waiter: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._idle_waiters.append(waiter)
            try:
                if self.inflight:
                    await waiter
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._idle_waiters.remove(waiter)
        self.closed = True

    def reopen(self) -> None:
        """Accept emissions again after ``close`` (harmless on an open bus); a
        close still under way is a ``RuntimeError``: it would mark the bus
        closed when it ends."""
        if self.closing and not self.closed:
            raise RuntimeError("reopen() while aclose() is still under way; await it first")
        self.closed = False
        self.closing = False
