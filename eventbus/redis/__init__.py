"""A bridge between an ``EventBus`` and a Redis stream, for apps that run as
several processes: at-least-once delivery with Redis Streams consumer groups.

Outbound, every local emission whose name matches ``forward`` is appended to
the stream (batched, pipelined ``XADD``). Inbound, the bridge reads the stream
as one consumer of ``group`` and emits each entry on the local bus, keeping
the event's id, parent id, source and depth; it acknowledges an entry only
once every handler succeeded, retries a failed one up to ``max_deliveries``
times and then moves it to a dead-letter stream, and claims entries that a
crashed consumer left pending. Needs the ``redis`` extra.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, Self, final

import structlog

from eventbus import EventBus

from ._entries import text
from ._inbound import Consumer
from ._link import DOWN, Link, describe, redis
from ._membership import leave, remove_stale
from ._options import check_options
from ._outbound import NotSentError, Outbox, OutboxFullError

__all__ = ["BridgeStats", "NotSentError", "OutboxFullError", "RedisBridge"]

_CANCEL_CHECK: Final = 0.05
"""Seconds between cancellations of a task that must end: Python 3.11's
``wait_for``, which redis-py uses to send a command, can swallow one."""


@final
@dataclass(frozen=True, slots=True)
class BridgeStats:
    """A snapshot of what a bridge has done since it started (``await bridge.stats()``)."""

    forwarded: int
    """Local emissions appended to the stream."""
    outbox: int
    """Local emissions waiting to be appended (the server is slow or unreachable)."""
    consumed: int
    """Deliveries offered to the local bus (each attempt counts, refusals too)."""
    acked: int
    """Entries acknowledged after every handler succeeded (or skipped, see below)."""
    retried: int
    """Failed deliveries left pending for another delivery."""
    dead_lettered: int
    """Entries moved to the dead-letter stream."""
    duplicates: int
    """Entries acknowledged without dispatch: their event id was already handled."""
    echoes: int
    """Entries acknowledged without dispatch: emitted by a process of this group,
    which already ran this group's handlers."""
    connection_errors: int
    """Times the server could not be reached."""
    connected: bool
    """Whether the last command reached the server."""
    pending: int | None
    """Entries delivered to the group and not yet acknowledged (None: unknown)."""
    lag: int | None
    """Entries in the stream not yet delivered to the group (None: unknown)."""
    trimmed_unread: int = 0
    """Entries ``maxlen`` trimmed before a group of the stream had read them, as
    this bridge's writer saw it (every group counts, not only this bridge's)."""


@final
class RedisBridge:
    """Connects ``bus`` to one Redis stream (see the module docstring).

    Use it as ``async with RedisBridge(...):`` (e.g. in a FastAPI lifespan),
    or call ``start()`` and ``stop()``. Without ``group`` it only forwards;
    without ``forward`` it only receives.
    """

    def __init__(
        self,
        bus: EventBus,
        client: redis.asyncio.Redis,
        *,
        stream: str = "eventbus",
        group: str | None = None,
        consumer: str | None = None,
        forward: Iterable[str] | str = (),
        batch: int = 100,
        block: float = 1.0,
        maxlen: int | None = 100_000,
        max_deliveries: int = 5,
        retry_delay: float = 1.0,
        min_idle: float = 30.0,
        dead_letter: str | None = None,
        dedup_window: float | None = None,
        start_at: str = "$",
        confirm: bool = False,
        max_outbox: int = 100_000,
        when_full: Literal["raise", "wait"] = "raise",
        send_timeout: float = 10.0,
        stream_only: bool = False,
        logger: Any | None = None,
    ) -> None:
        options = check_options(
            bus,
            client,
            stream=stream,
            group=group,
            consumer=consumer,
            forward=forward,
            batch=batch,
            block=block,
            maxlen=maxlen,
            max_deliveries=max_deliveries,
            retry_delay=retry_delay,
            min_idle=min_idle,
            dead_letter=dead_letter,
            dedup_window=dedup_window,
            start_at=start_at,
            confirm=confirm,
            max_outbox=max_outbox,
            when_full=when_full,
            send_timeout=send_timeout,
            stream_only=stream_only,
        )
        self.stream: Final = options.stream
        self.group: Final = options.group
        self.consumer: Final = options.consumer
        self.forward: Final = options.forward
        self.dead_letter: Final = options.dead_letter
        self.max_deliveries: Final = options.max_deliveries
        self.confirm: Final = options.confirm
        self._stale_after_ms: Final = 2 * options.min_idle_ms
        self.stream_only: Final = options.stream_only
        log = logger if logger is not None else structlog.get_logger("eventbus.redis")
        self._bus: Final = bus
        self._link: Final = Link(client, self.stream, self.group, self.consumer, log)
        self._outbox: Final = Outbox(self._link, options, bus.outgoing_headers)
        self._consumer: Final = (
            None
            if self.group is None
            else Consumer(self._link, bus, self._outbox if self.forward else None, options)
        )
        self._writing: asyncio.Task[None] | None = None
        self._consuming: asyncio.Task[None] | None = None
        self._stop_consuming = self._stop_writing = asyncio.Event()  # replaced by start()
        self._stopped: asyncio.Future[None] | None = None  # set while stop() runs

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"<RedisBridge stream={self.stream!r} group={self.group!r} "
            f"consumer={self.consumer!r} {state}>"
        )

    @property
    def running(self) -> bool:
        """Whether ``start()`` was called and ``stop()`` was not."""
        return self._writing is not None or self._consuming is not None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start forwarding and (with a group) consuming.

        With the server up, the group exists when this returns, so every entry
        added from then on reaches it. An unreachable server does not fail the
        start: it is reported, and retried in the background.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        loop = asyncio.get_running_loop()
        self._stop_consuming, self._stop_writing = asyncio.Event(), asyncio.Event()
        empty = contextvars.Context()  # not part of whatever chain called start()
        consumer = self._consumer
        if consumer is not None:
            try:
                await consumer.create_group()
                await self._remove_stale()
            except DOWN as error:
                consumer.group_ready = False
                self._link.server_down(error)
            self._consuming = loop.create_task(consumer.run(self._stop_consuming), context=empty)
        if self.forward:
            self._outbox.bind(loop)  # before the tap is added: confirmations need the loop
            self._writing = loop.create_task(self._outbox.run(self._stop_writing), context=empty)
            self._bus.add_tap(self._outbox)
        self._link.log.info(
            "eventbus.redis.started", forward=list(self.forward), **self._link.where()
        )

    async def stop(self, timeout: float | None = 10.0) -> None:
        """Stop, in this order, within ``timeout`` seconds in all: stop reading
        (a read in progress returns within ``block``), finish the entries in hand
        and acknowledge those that succeeded (failed ones stay pending for
        another delivery); stop forwarding; send what waits in the outbox (what
        handlers emitted while finishing included); leave the group when nothing
        is pending at this consumer. Harmless when not running; a second call
        waits for the first."""
        if self._stopped is not None:
            await asyncio.shield(self._stopped)
            return
        if not self.running:
            return
        self._stopped = asyncio.get_running_loop().create_future()
        left = _countdown(timeout)
        try:
            await self._stop_consumer(left)
            self._bus.remove_tap(self._outbox)
            self._stop_writing.set()
            self._outbox.stop()
            if self._writing is not None:
                await _finish(self._writing, left())
            if self._consumer is not None:
                await self._leave(left())
        finally:
            self._writing = self._consuming = None
            self._stopped.set_result(None)
            self._stopped = None
        if self._outbox:
            self._link.log.error(
                "eventbus.redis.not_forwarded", count=len(self._outbox), **self._link.where()
            )
            self._outbox.fail_flushes(self._not_running())
        self._link.log.info("eventbus.redis.stopped", **self._link.where())

    async def _stop_consumer(self, left: Callable[[], float | None]) -> None:
        """Stop reading, let the batch in hand finish, acknowledge what succeeded."""
        task, consumer = self._consuming, self._consumer
        if task is None or consumer is None:
            return
        # Not cancelled while it reads: a reply lost to a cancellation would leave
        # the entries it carried pending here, delivered but never handled.
        self._stop_consuming.set()
        await _finish(task, left())
        try:
            async with asyncio.timeout(left()):
                await consumer.finish()
        except TimeoutError:
            consumer.report_unacked()

    async def _remove_stale(self) -> None:
        """Remove the names of consumers gone without a clean stop (best effort)."""
        try:
            await remove_stale(self._link, self._stale_after_ms)
        except redis.ResponseError as error:
            self._link.log.warning(
                "eventbus.redis.error", error=describe(error), **self._link.where()
            )

    async def _leave(self, timeout: float | None) -> None:
        """Remove this consumer from the group, unless entries are pending at it."""
        try:
            async with asyncio.timeout(timeout):
                await leave(self._link)
        except (*DOWN, redis.ResponseError) as error:
            self._link.log.warning(
                "eventbus.redis.not_left", error=describe(error), **self._link.where()
            )

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every emission forwarded so far is in the stream; after
        ``timeout`` seconds (None: no limit), ``TimeoutError``."""
        if self._outbox and self._writing is None:
            raise self._not_running()
        try:
            async with asyncio.timeout(timeout):
                await self._outbox.flush()
        except TimeoutError:
            raise TimeoutError(
                f"{self!r}: {len(self._outbox)} forwarded emissions are still not in the "
                f"stream after {timeout} s (the server is slow or unreachable)"
            ) from None

    def mark(self) -> int:
        """A mark of the emissions forwarded so far, for ``sent_up_to``."""
        return self._outbox.mark()

    async def sent_up_to(self, mark: int) -> None:
        """Wait until every emission forwarded before ``mark()`` returned ``mark``
        has left the outbox: in the stream, or (confirmed ones only) failed to
        their emitter with ``NotSentError``. ``RuntimeError`` if the bridge stops
        first with one of them unsent."""
        if self._outbox and self._writing is None:
            raise self._not_running()
        await self._outbox.sent_up_to(mark)

    def _not_running(self) -> RuntimeError:
        return RuntimeError(
            f"{self!r} is not running: {len(self._outbox)} forwarded "
            "emissions wait in its outbox and are sent when it starts again"
        )

    async def stats(self) -> BridgeStats:
        """The counters, plus the group's pending entries and lag as the server
        reports them (None when it cannot be asked or cannot tell)."""
        pending = lag = None
        if self.group is not None:
            try:
                groups = await self._link.client.xinfo_groups(self.stream)
            except (*DOWN, redis.ResponseError):
                groups = []
            for info in groups:
                if text(info["name"]) == self.group:
                    pending = int(info["pending"])
                    raw_lag = info.get("lag")
                    lag = None if raw_lag is None else int(raw_lag)
        return BridgeStats(
            outbox=len(self._outbox),
            connected=self._link.connected,
            pending=pending,
            lag=lag,
            **self._link.counts,
        )


def _countdown(timeout: float | None) -> Callable[[], float | None]:
    """A function telling the seconds left of ``timeout`` from now (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    return left


async def _finish(task: asyncio.Task[None], timeout: float | None) -> None:
    """Wait for ``task`` for at most ``timeout`` seconds, then cancel it until it ends."""
    await asyncio.wait((task,), timeout=timeout)
    while not task.done():
        task.cancel()
        await asyncio.wait((task,), timeout=_CANCEL_CHECK)
