"""What a bus has under way and where: emissions in flight, published tasks,
the loops it runs on (its home loop, its background loop), and closing
(``drain``/``aclose``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from asyncio.events import _get_running_loop
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, final

from ._blocking import BackgroundLoop

if TYPE_CHECKING:
    from ._event import Event
    from ._logging import BusLog

__all__ = ["Lifecycle"]

_POLL_INTERVAL = 0.25
"""Seconds between checks, while waiting for tasks of other loops, that those
loops have not closed (a closed loop never finishes its tasks)."""

_EXIT_JOIN_TIMEOUT = 1.0
"""Seconds interpreter exit waits for a background loop's thread to end."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _watch(task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> asyncio.Future[None] | None:
    """A future of ``loop`` settled when ``task`` (of another loop, maybe in
    another thread) is done; None if the task's loop is closed."""
    waiter = loop.create_future()

    def relay(_: object) -> None:  # on the task's loop
        with contextlib.suppress(RuntimeError):  # the waiting loop closed: nobody waits
            loop.call_soon_threadsafe(_wake, waiter)

    try:
        task.get_loop().call_soon_threadsafe(task.add_done_callback, relay)
    except RuntimeError:
        return None
    return waiter


_lifecycles: weakref.WeakSet[Lifecycle] = weakref.WeakSet()
"""Every bus's lifecycle, for ``_after_fork_in_child``."""


def _after_fork_in_child() -> None:
    """In a child process the parent's loop threads do not exist: forget them."""
    for life in list(_lifecycles):
        life.forget_loops()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@final
class Lifecycle:
    """Counts emissions in flight and keeps published tasks, so that ``aclose``
    can refuse new emissions and wait for the accepted ones; knows the bus's
    home loop and runs its background loop.

    ``inflight`` has one entry per emission under way (``list.append`` and
    ``pop`` are atomic, so threads need no lock); ``closing`` is read on every
    emission and set once by ``aclose``; ``loop`` (the home loop) is compared
    with the running loop on every ``emit``/``publish``.
    """

    __slots__ = (
        "__weakref__",
        "_background",
        "_halt_at_exit",
        "_idle_waiters",
        "_lock",
        "_log",
        "closed",
        "closing",
        "inflight",
        "loop",
        "tasks",
    )

    def __init__(self, lock: threading.RLock, log: BusLog) -> None:
        self._lock: Final = lock
        self._log: Final = log
        self.inflight: Final[list[None]] = []
        self.closing = False
        """``aclose`` was called: new top-level emissions are refused."""
        self.closed = False
        """``aclose`` finished: every emission is refused."""
        self._idle_waiters: list[asyncio.Future[None]] = []
        self.tasks: Final[dict[asyncio.Task[Any], Event]] = {}
        """Published tasks not yet done, with their events."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The home loop: where ``emit_sync`` runs async handlers while it runs."""
        self._background: BackgroundLoop | None = None
        self._halt_at_exit: weakref.finalize[Any, Any] | None = None
        _lifecycles.add(self)

    # ------------------------------------------------------------------ loops

    def adopt(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """The bus runs on ``loop``, which is not its home loop: make it the home
        loop if there is none running (never the background loop)."""
        if loop is None or loop is self.loop:
            return
        background = self._background
        if background is not None and loop is background.loop:
            return
        with self._lock:
            home = self.loop
            if home is None or not home.is_running():
                self.loop = loop

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """``bus.bind()``: make ``loop`` (by default the running one) the home loop."""
        if loop is None:
            loop = _get_running_loop()
            if loop is None:
                raise RuntimeError("bind() with no argument needs a running event loop")
        elif not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"bind() needs an event loop, not {type(loop).__name__}")
        if loop.is_closed():
            raise RuntimeError("bind() needs an event loop that is not closed")
        with self._lock:
            background = self._background
            if background is not None and loop is background.loop:
                raise RuntimeError("the bus's background loop cannot be its home loop")
            home = self.loop
            if home is not None and home is not loop and home.is_running():
                raise RuntimeError(
                    "bind(): the bus's home loop is another loop that is still running"
                )
            self.loop = loop

    def home_running(self) -> asyncio.AbstractEventLoop | None:
        """The home loop if it runs (in another thread: the caller has none)."""
        loop = self.loop
        return loop if loop is not None and loop.is_running() else None

    def background(self) -> asyncio.AbstractEventLoop:
        """The bus's background loop, started on first need."""
        background = self._background
        if background is None:
            with self._lock:
                background = self._background
                if background is None:
                    background = BackgroundLoop(f"eventbus-{self._log.bus}")
                    self._halt_at_exit = weakref.finalize(self, background.halt, _EXIT_JOIN_TIMEOUT)
                    self._background = background
        return background.loop

    async def _stop_background(self) -> None:
        """Stop the background loop and wait until its thread has ended."""
        with self._lock:
            background, self._background = self._background, None
            if self._halt_at_exit is not None:
                self._halt_at_exit.detach()
                self._halt_at_exit = None
        if background is None:
            return
        background.stop()
        if _get_running_loop() is background.loop:  # it stops once this task yields
            return
        await asyncio.wrap_future(background.stopped)
        background.thread.join()

    def forget_loops(self) -> None:
        """In a forked child: no home loop, no background loop (their threads are
        the parent's); the tasks of the background loop will never finish there."""
        background = self._background
        self.loop = None
        self._background = None
        if self._halt_at_exit is not None:
            self._halt_at_exit.detach()
            self._halt_at_exit = None
        if background is not None:
            for task in [task for task in self.tasks if task.get_loop() is background.loop]:
                if self.tasks.pop(task, None) is not None:
                    self.inflight.pop()

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

    def keep(self, task: asyncio.Task[Any], event: Event) -> None:
        """Hold a task already counted in ``inflight`` until it is done; ``drain``
        and ``aclose`` wait for it."""
        self.tasks[task] = event
        task.add_done_callback(self._task_done)

    def run_later(self, work: Coroutine[Any, Any, Any], event: Event) -> None:
        """Run ``work`` (for ``event``) as a task of the running loop that
        ``aclose`` waits for."""
        self.inflight.append(None)
        self.keep(asyncio.ensure_future(work), event)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        event = self.tasks.pop(task, None)
        if event is None:  # given up: its loop closed (see _give_up)
            return
        self.finish_one()
        if task.cancelled():
            self._log.publish_cancelled(event)
        elif (error := task.exception()) is not None:
            self._log.publish_failed(task, error)

    def _give_up(self, task: asyncio.Task[Any]) -> None:
        """``task``'s loop closed with it pending: it will never finish."""
        event = self.tasks.pop(task, None)
        if event is not None:
            self.finish_one()
            self._log.publish_cancelled(event)

    def _elsewhere(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Give up the tasks of closed loops; tell whether any task of another
        loop is left."""
        elsewhere = False
        for task in tuple(self.tasks):
            other = task.get_loop()
            if other is not loop:
                if other.is_closed() and not task.done():
                    self._give_up(task)
                else:
                    elsewhere = True
        return elsewhere

    # ------------------------------------------------------------------ closing

    async def drain(self) -> None:
        """Wait until every kept task is done, whichever loop runs it, including
        those added while draining; not for tasks of a closed loop."""
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()  # a published handler draining must not wait for itself
        watchers: dict[asyncio.Task[Any], asyncio.Future[None] | None] = {}
        while True:
            pending: list[asyncio.Future[Any]] = []
            elsewhere = False
            for task in tuple(self.tasks):
                if task is me or task.done():
                    continue
                other = task.get_loop()
                if other is loop:
                    pending.append(task)
                    continue
                if other.is_closed():
                    self._give_up(task)
                    continue
                if task not in watchers:
                    watchers[task] = _watch(task, loop)
                watcher = watchers[task]
                if watcher is not None and not watcher.done():
                    pending.append(watcher)
                    elsewhere = True
            if not pending:
                return
            await asyncio.wait(pending, timeout=_POLL_INTERVAL if elsewhere else None)

    async def close(self) -> None:
        """Refuse new top-level emissions, wait until none is in flight, then
        stop the background loop."""
        self.closing = True
        loop = asyncio.get_running_loop()
        while self.inflight:
            waiter: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._idle_waiters.append(waiter)
            try:
                if self.inflight:
                    elsewhere = self._elsewhere(loop)
                    if self.inflight:
                        await asyncio.wait((waiter,), timeout=_POLL_INTERVAL if elsewhere else None)
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._idle_waiters.remove(waiter)
        self.closed = True
        await self._stop_background()

    def reopen(self) -> None:
        """Accept emissions again after ``close`` (harmless on an open bus); a
        close still under way is a ``RuntimeError``: it would mark the bus
        closed when it ends."""
        if self.closing and not self.closed:
            raise RuntimeError("reopen() while aclose() is still under way; await it first")
        self.closed = False
        self.closing = False
