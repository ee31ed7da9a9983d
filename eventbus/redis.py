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
import contextlib
import contextvars
import json
import math
import os
import socket
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self, final

try:
    import redis as _redis
    from redis.asyncio import Redis
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "eventbus.redis needs the redis client; install the extra: pip install 'eventbus[redis]'",
        name=error.name,
    ) from error

import structlog

from ._bus import EventBus
from ._chain import chain_names, current_frame
from ._entries import BadEntry, Received, ancestry, decode, encode, text
from ._errors import BusClosedError, EventBusError, safe_repr
from ._event import Event
from ._handlers import check_timeout
from ._names import key_matches
from ._report import EmitReport

__all__ = ["BridgeStats", "RedisBridge"]

_DOWN: Final = (_redis.ConnectionError, _redis.TimeoutError, OSError, TimeoutError)
"""What a lost or unreachable server raises: the bridge waits and tries again."""
_RECONNECT_DELAYS: Final = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

Entry = tuple[str, dict[Any, Any] | None, int]
"""(entry id, raw fields or None when the entry was trimmed, delivery count)."""


@final
@dataclass(frozen=True, slots=True)
class BridgeStats:
    """A snapshot of what a bridge has done since it started (``await bridge.stats()``)."""

    forwarded: int
    """Local emissions appended to the stream."""
    outbox: int
    """Local emissions waiting to be appended (the server is slow or unreachable)."""
    consumed: int
    """Entries emitted on the local bus (each attempt counts)."""
    acked: int
    """Entries acknowledged after every handler succeeded (or skipped, see below)."""
    retried: int
    """Failed entries left pending to be delivered again."""
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


class _Outbox:
    """The bridge's tap on the bus: encodes each forwarded emission (refusing a
    payload JSON cannot carry) and queues it for the writer."""

    __slots__ = ("_bridge", "patterns")

    def __init__(self, bridge: RedisBridge, patterns: tuple[str, ...]) -> None:
        self._bridge = bridge
        self.patterns = patterns

    def matches(self, name: str) -> bool:
        return any(key_matches(pattern, name) for pattern in self.patterns)

    def prepare(self, event: Event) -> dict[str, str]:
        bridge = self._bridge
        parent = current_frame.get() if event.depth else None
        return encode(event, chain_names(parent), bridge._origin, bridge.stream)

    def take(self, fields: dict[str, str]) -> None:
        self._bridge._queue(fields)


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
        client: Redis,
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
        logger: Any | None = None,
    ) -> None:
        if not isinstance(bus, EventBus):
            raise TypeError(f"bus must be an EventBus, not {type(bus).__name__}")
        if isinstance(client, _redis.Redis) or not hasattr(client, "xreadgroup"):
            raise TypeError(
                f"client must be an asyncio Redis client (redis.asyncio.Redis), "
                f"not {type(client).__module__}.{type(client).__qualname__}"
            )
        self._bus: Final = bus
        # redis-py's declared reply types are unions that fit no real reply: Any.
        self._client: Final[Any] = client
        self.stream: Final = _check_key(stream, "stream")
        self.group: Final = None if group is None else _check_key(group, "group")
        self.consumer: Final = _check_key(
            consumer if consumer is not None else f"{socket.gethostname()}-{os.getpid()}",
            "consumer",
        )
        self.forward: Final = _check_forward(bus, forward)
        if not self.forward and self.group is None:
            raise ValueError("a bridge with no forward patterns and no group would do nothing")
        self._batch: Final = _check_count(batch, "batch", minimum=1)
        self._block_ms: Final = max(1, round(_check_seconds(block, "block") * 1000))
        self._maxlen: Final = None if maxlen is None else _check_count(maxlen, "maxlen", minimum=1)
        self.max_deliveries: Final = _check_count(max_deliveries, "max_deliveries", minimum=1)
        self._retry_delay: Final = _check_seconds(retry_delay, "retry_delay", allow_zero=True)
        self._min_idle_ms: Final = max(1, round(_check_seconds(min_idle, "min_idle") * 1000))
        self.dead_letter: Final = _check_key(
            dead_letter if dead_letter is not None else f"{stream}:dead", "dead_letter"
        )
        self._dedup_ms: Final = (
            None if dedup_window is None
            else max(1, round(_check_seconds(dedup_window, "dedup_window") * 1000))
        )
        if not isinstance(start_at, str):
            raise TypeError(f"start_at must be a str, not {type(start_at).__name__}")
        if start_at not in ("$", "0"):
            raise ValueError(f"start_at must be '$' (new entries) or '0' (the whole stream), "
                             f"not {safe_repr(start_at)}")
        self._start_at_now = start_at
        self._log: Final = logger if logger is not None else structlog.get_logger("eventbus.redis")
        self._origin: Final = self.group or ""
        self._outbox_tap: Final = _Outbox(self, self.forward)
        # Outbound state: entries waiting, the writer's wake-up, flush() waiters.
        self._outbox: Final[deque[dict[str, str]]] = deque()
        self._writer_idle = False
        self._wakeup: asyncio.Event | None = None
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []
        # Inbound state: failed entries waiting for their next delivery, acks not yet sent.
        self._retries: dict[str, tuple[float, int]] = {}  # entry id -> (due, deliveries so far)
        self._unacked: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: asyncio.Task[None] | None = None
        self._stopping = False
        self._group_ready = False
        self._waiting = False  # the consumer holds no entry: stop() may cancel it
        self._counts: Final = dict.fromkeys(
            ("forwarded", "consumed", "acked", "retried", "dead_lettered", "duplicates",
             "echoes", "connection_errors"), 0
        )
        self._connected = True

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"<RedisBridge stream={self.stream!r} group={self.group!r} "
                f"consumer={self.consumer!r} {state}>")

    @property
    def running(self) -> bool:
        """Whether ``start()`` was called and ``stop()`` was not."""
        return bool(self._tasks)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start forwarding and (with a group) consuming.

        With the server up, the group exists when this returns, so every entry
        added from then on reaches it. An unreachable server does not fail the
        start: it is reported, and retried in the background.
        """
        if self._tasks:
            raise RuntimeError(f"{self!r} is already running")
        if self.group is not None and not self._group_ready:
            try:
                await self._create_group(self._start_at_now)
            except _DOWN as error:
                self._counts["connection_errors"] += 1
                self._report_down(error)
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._wakeup = asyncio.Event()
        empty = contextvars.Context()  # not part of whatever chain called start()
        if self.forward:
            self._tasks.append(self._loop.create_task(self._write(), context=empty))
            self._bus._add_tap(self._outbox_tap)
        if self.group is not None:
            self._consumer = self._loop.create_task(self._consume(), context=empty)
            self._tasks.append(self._consumer)
        self._log.info("eventbus.redis.started", stream=self.stream, group=self.group,
                       consumer=self.consumer, forward=list(self.forward))

    async def stop(self, timeout: float | None = 10.0) -> None:
        """Stop: finish and acknowledge the entries in hand (the rest stay pending
        for other consumers), send what is waiting to be forwarded (for at most
        ``timeout`` seconds), then return. Harmless when not running."""
        if not self._tasks:
            return
        self._bus._remove_tap(self._outbox_tap)
        self._stopping = True
        assert self._wakeup is not None
        self._wakeup.set()
        consumer = self._consumer
        while consumer is not None and self._waiting and not consumer.done():
            # Blocked waiting for new entries (or for the server): nothing in hand.
            # Whatever the server hands over meanwhile stays pending for others.
            # Cancel until it takes: Python 3.11's wait_for, which redis-py uses
            # to send a command, can swallow a cancellation.
            consumer.cancel()
            await asyncio.wait((consumer,), timeout=0.05)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        except TimeoutError:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._consumer = None
        if self._outbox:
            self._log.error("eventbus.redis.not_forwarded", stream=self.stream,
                            count=len(self._outbox))
        flushes, self._flushes = self._flushes, []
        for _, waiter in flushes:
            if not waiter.done():
                waiter.set_exception(self._not_running())
        self._log.info("eventbus.redis.stopped", stream=self.stream, group=self.group,
                       consumer=self.consumer)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- outbound

    def _queue(self, fields: dict[str, str]) -> None:
        """Called by the tap, from any thread: queue an entry and wake the writer."""
        self._outbox.append(fields)
        if self._writer_idle:
            self._writer_idle = False
            wakeup, loop = self._wakeup, self._loop
            assert wakeup is not None
            assert loop is not None
            if asyncio._get_running_loop() is loop:
                wakeup.set()
            else:  # a closed loop raises: stop() has reported what is left
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(wakeup.set)

    async def _write(self) -> None:
        """Append queued entries to the stream, a pipelined batch at a time, in order."""
        outbox = self._outbox
        wakeup = self._wakeup
        assert wakeup is not None
        failures = 0
        while True:
            if not outbox:
                if self._stopping:
                    return
                self._writer_idle = True
                wakeup.clear()
                if not outbox:
                    await wakeup.wait()
                self._writer_idle = False
                continue
            count = min(len(outbox), self._batch)
            entries = [outbox[index] for index in range(count)]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for fields in entries:
                        pipe.xadd(self.stream, fields, maxlen=self._maxlen, approximate=True)
                    await pipe.execute()
            except _DOWN as error:
                failures = await self._server_down(error, failures)
                continue
            except Exception as error:  # e.g. the server refuses writes: report, retry
                failures = await self._failed(error, failures)
                continue
            self._server_up()
            failures = 0
            for _ in range(count):
                outbox.popleft()
            self._counts["forwarded"] += count
            self._log.debug("eventbus.redis.forwarded", stream=self.stream, count=count)
            self._wake_flushes()

    async def flush(self) -> None:
        """Wait until every emission forwarded so far is in the stream."""
        if not self._outbox:
            return
        if not self._tasks:
            raise self._not_running()
        target = self._counts["forwarded"] + len(self._outbox)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append((target, waiter))
        await waiter

    def _not_running(self) -> RuntimeError:
        count = len(self._outbox)
        return RuntimeError(f"{self!r} is not running: {count} forwarded emissions wait in "
                            "its outbox and are sent when it starts again")

    def _wake_flushes(self) -> None:
        done = self._counts["forwarded"]
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._flushes:
            if target <= done:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._flushes = still

    # ---------------------------------------------------------------- inbound

    async def _consume(self) -> None:
        """Read, dispatch and acknowledge until stopped; reconnect when the server goes away."""
        failures = 0
        history: str | None = "0"  # own pending entries first: a restart resumes them
        next_claim = 0.0
        while not self._stopping:
            try:
                if self._unacked:
                    unacked, self._unacked = self._unacked, []
                    await self._ack(unacked)
                if not self._group_ready:
                    await self._create_group(self._start_at_now)
                now = time.monotonic()
                if now >= next_claim:
                    await self._handle(await self._claim_abandoned())
                    next_claim = now + self._min_idle_ms / 2000
                wait = next_claim - now
                if self._retries:
                    next_retry = min(due for due, _ in self._retries.values())
                    if next_retry <= now:
                        await self._handle(await self._claim_retries(now))
                    wait = min(wait, next_retry - now)
                if self._stopping:
                    break
                if history is not None:
                    entries, history = await self._read_history(history)
                else:
                    entries = await self._read_new(wait)
                await self._handle(entries)
                self._server_up()
                failures = 0
            except _DOWN as error:
                failures = await self._server_down(error, failures)
            except BusClosedError:
                self._log.warning("eventbus.redis.bus_closed", stream=self.stream,
                                  group=self.group, consumer=self.consumer)
                break
            except _redis.ResponseError as error:
                if "NOGROUP" in str(error):
                    # The stream or group is gone (a server restarted without its data):
                    # whatever the stream holds now is new to this group.
                    self._log.warning("eventbus.redis.group_missing", stream=self.stream,
                                      group=self.group)
                    self._group_ready, self._start_at_now = False, "0"
                    continue
                failures = await self._failed(error, failures)
            except Exception as error:  # a bug must not end consumption silently
                failures = await self._failed(error, failures)
        if self._unacked:
            unacked, self._unacked = self._unacked, []
            try:
                await self._ack(unacked)
            except _DOWN:
                self._log.warning("eventbus.redis.not_acked", stream=self.stream,
                                  group=self.group, count=len(unacked))

    async def _create_group(self, start_at: str) -> None:
        try:
            await self._client.xgroup_create(self.stream, self._group, start_at, mkstream=True)
        except _redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    @property
    def _group(self) -> str:
        assert self.group is not None
        return self.group

    async def _read_new(self, wait: float) -> list[Entry]:
        if self._stopping:
            return []
        block = max(1, min(self._block_ms, round(wait * 1000)))
        self._waiting = True
        try:
            response = await self._client.xreadgroup(
                self._group, self.consumer, {self.stream: ">"}, count=self._batch, block=block
            )
        finally:
            self._waiting = False
        return [(text(entry_id), fields, 1) for entry_id, fields in _entries_of(response)]

    async def _read_history(self, after: str) -> tuple[list[Entry], str | None]:
        """A batch of this consumer's own pending entries after ``after``, and
        where the next batch starts (None when they are all read)."""
        response = await self._client.xreadgroup(
            self._group, self.consumer, {self.stream: after}, count=self._batch
        )
        raw = [(text(entry_id), fields) for entry_id, fields in _entries_of(response)]
        if not raw:
            return [], None
        raw = [(entry_id, fields) for entry_id, fields in raw if entry_id not in self._retries]
        return await self._with_deliveries(raw), raw[-1][0] if raw else after

    async def _claim_abandoned(self) -> list[Entry]:
        """Entries other consumers left pending for longer than ``min_idle``."""
        claimed: list[tuple[str, dict[Any, Any] | None]] = []
        cursor = "0-0"
        while True:
            response = await self._client.xautoclaim(
                self.stream, self._group, self.consumer, self._min_idle_ms,
                start_id=cursor, count=self._batch,
            )
            cursor, entries = text(response[0]), response[1]
            claimed += [(text(entry_id), fields) for entry_id, fields in entries]
            for entry_id, _ in entries:
                self._retries.pop(text(entry_id), None)  # due later, but claimed now
            deleted = response[2] if len(response) > 2 else []
            if deleted:
                self._log.error("eventbus.redis.trimmed_while_pending", stream=self.stream,
                                group=self.group, entry_ids=[text(i) for i in deleted])
            if cursor == "0-0" or len(claimed) >= self._batch:
                break
        if claimed:
            self._log.warning("eventbus.redis.claimed", stream=self.stream, group=self.group,
                              consumer=self.consumer, count=len(claimed))
        return await self._with_deliveries(claimed)

    async def _claim_retries(self, now: float) -> list[Entry]:
        """Failed entries due for another delivery, claimed back by this consumer
        (unless another consumer took them meanwhile)."""
        due = [entry_id for entry_id, (at, _) in self._retries.items() if at <= now]
        due = due[: self._batch]
        min_idle = max(0, round(self._retry_delay * 900))
        response = await self._client.xclaim(
            self.stream, self._group, self.consumer, min_idle, due
        )
        claimed = {text(entry_id): fields for entry_id, fields in response}
        entries: list[Entry] = []
        for entry_id in due:
            _, deliveries = self._retries.pop(entry_id)
            if entry_id in claimed:
                entries.append((entry_id, claimed[entry_id], deliveries + 1))
        return entries

    async def _with_deliveries(
        self, raw: Sequence[tuple[str, dict[Any, Any] | None]]
    ) -> list[Entry]:
        """Attach each entry's delivery count, as the server keeps it."""
        if not raw:
            return []
        pending = await self._client.xpending_range(
            self.stream, self._group, min=raw[0][0], max=raw[-1][0],
            count=len(raw) * 4 + 16, consumername=self.consumer,
        )
        counts = {text(item["message_id"]): int(item["times_delivered"]) for item in pending}
        return [(entry_id, fields, counts.get(entry_id, 1)) for entry_id, fields in raw]

    async def _handle(self, entries: list[Entry]) -> None:
        """Dispatch a batch in order; acknowledge what succeeded, schedule a retry
        for what failed, dead-letter what failed too often or can never succeed."""
        if not entries:
            return
        seen = await self._already_handled(entries)
        done: list[str] = []
        try:
            await self._handle_each(entries, seen, done)
        except BaseException:
            self._unacked += done  # handled: acknowledged as soon as the server answers
            raise
        if done:
            await self._ack(done)

    async def _handle_each(self, entries: list[Entry], seen: set[str], done: list[str]) -> None:
        for entry_id, fields, deliveries in entries:
            if fields is None:  # trimmed from the stream while pending: nothing left to run
                self._log.error("eventbus.redis.trimmed_while_pending", stream=self.stream,
                                group=self.group, entry_ids=[entry_id])
                done.append(entry_id)
                continue
            try:
                received = decode(fields)
            except BadEntry as error:
                await self._bury(entry_id, fields, deliveries, [_error_record(None, error)])
                continue
            event = received.event
            if received.origin and received.origin == self.group:
                self._counts["echoes"] += 1
                done.append(entry_id)
                continue
            if event.id in seen:
                self._counts["duplicates"] += 1
                self._log.info("eventbus.redis.duplicate", stream=self.stream, group=self.group,
                               event_id=event.id, entry_id=entry_id)
                done.append(entry_id)
                continue
            if deliveries > self.max_deliveries:
                why = RuntimeError(f"delivered {deliveries - 1} times without being "
                                   "acknowledged (its consumers stopped or crashed meanwhile)")
                await self._bury(entry_id, fields, deliveries, [_error_record(None, why)])
                continue
            report = await self._dispatch(entry_id, fields, deliveries, received)
            if report is None:
                continue
            if report.ok:
                if self._dedup_ms is not None:
                    await self._ack([entry_id], handled=event.id)
                    seen.add(event.id)
                else:
                    done.append(entry_id)
            elif deliveries >= self.max_deliveries:
                await self._bury(entry_id, fields, deliveries, _errors_of(report))
            else:
                self._retries[entry_id] = (time.monotonic() + self._retry_delay, deliveries)
                self._counts["retried"] += 1
                self._log.warning("eventbus.redis.retry", stream=self.stream, group=self.group,
                                  event_name=event.name, event_id=event.id, entry_id=entry_id,
                                  deliveries=deliveries, failed=len(report.errors))

    async def _dispatch(
        self, entry_id: str, fields: dict[Any, Any], deliveries: int, received: Received
    ) -> EmitReport | None:
        """Emit a received event locally; None when the bus refused it for good
        (it is dead-lettered: strict mode, payload check or a loop)."""
        bus = self._bus
        self._counts["consumed"] += 1
        try:
            return await bus._emit_received(
                received.event, ancestry(bus, received), self._outbox_tap
            )
        except BusClosedError:
            raise
        except EventBusError as refusal:
            await self._bury(entry_id, fields, deliveries, [_error_record(None, refusal)])
            return None

    async def _already_handled(self, entries: list[Entry]) -> set[str]:
        """Event ids of ``entries`` handled within the dedup window (none without one)."""
        if self._dedup_ms is None:
            return set()
        ids: list[str] = []
        for _, fields, _ in entries:
            raw_id = fields and (fields.get(b"id") or fields.get("id"))
            if raw_id:
                ids.append(text(raw_id))
        if not ids:
            return set()
        values = await self._client.mget([self._seen_key(event_id) for event_id in ids])
        return {event_id for event_id, value in zip(ids, values, strict=True) if value}

    def _seen_key(self, event_id: str) -> str:
        return f"{self.stream}:{self.group}:handled:{event_id}"

    async def _ack(self, entry_ids: list[str], *, handled: str | None = None) -> None:
        """Acknowledge entries (and remember a handled event id for dedup), atomically.
        If the server is unreachable they are acknowledged once it is back."""
        try:
            if handled is None:
                await self._client.xack(self.stream, self._group, *entry_ids)
            else:
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.set(self._seen_key(handled), 1, px=self._dedup_ms)
                    pipe.xack(self.stream, self._group, *entry_ids)
                    await pipe.execute()
        except _DOWN:
            self._unacked += entry_ids
            raise
        count = len(entry_ids)
        self._counts["acked"] += count
        self._log.debug("eventbus.redis.acked", stream=self.stream, group=self.group,
                        count=count)

    async def _bury(
        self,
        entry_id: str,
        fields: dict[Any, Any],
        deliveries: int,
        errors: list[dict[str, str | None]],
    ) -> None:
        """Move an entry to the dead-letter stream with its errors, and acknowledge it."""
        dead = {text(key): text(value) for key, value in fields.items()}
        dead.update({
            "entry_id": entry_id,
            "group": self._group,
            "consumer": self.consumer,
            "deliveries": str(deliveries),
            "errors": json.dumps(errors, ensure_ascii=False),
        })
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter, dead)
            pipe.xack(self.stream, self._group, entry_id)
            await pipe.execute()
        self._counts["dead_lettered"] += 1
        self._log.error("eventbus.redis.dead_lettered", stream=self.stream, group=self.group,
                        dead_letter=self.dead_letter, entry_id=entry_id,
                        event_name=dead.get("name"), event_id=dead.get("id"),
                        deliveries=deliveries, errors=errors)

    # ---------------------------------------------------------------- health

    async def _failed(self, error: Exception, failures: int) -> int:
        """Report an unexpected error of the consumer loop and wait before going on."""
        self._log.error("eventbus.redis.error", stream=self.stream, group=self.group,
                        consumer=self.consumer, exc_info=error)
        return await self._pause(failures)

    async def _pause(self, failures: int) -> int:
        """Back off before trying again: longer after each failure in a row."""
        if self._stopping:
            return failures + 1
        in_consumer = asyncio.current_task() is self._consumer
        if in_consumer:
            self._waiting = True
        try:
            await asyncio.sleep(_RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)])
        finally:
            if in_consumer:
                self._waiting = False
        return failures + 1

    async def _server_down(self, error: BaseException, failures: int) -> int:
        """Report a lost server (once per outage) and wait before trying again."""
        self._counts["connection_errors"] += 1
        self._report_down(error)
        return await self._pause(failures)

    def _report_down(self, error: BaseException) -> None:
        if self._connected:
            self._connected = False
            self._log.error("eventbus.redis.connection_lost", stream=self.stream,
                            group=self.group, consumer=self.consumer, error=_describe(error))

    def _server_up(self) -> None:
        if not self._connected:
            self._connected = True
            self._log.info("eventbus.redis.reconnected", stream=self.stream, group=self.group,
                           consumer=self.consumer)

    async def stats(self) -> BridgeStats:
        """The counters, plus the group's pending entries and lag as the server
        reports them (None when it cannot be asked or cannot tell)."""
        pending = lag = None
        if self.group is not None:
            try:
                groups = await self._client.xinfo_groups(self.stream)
            except (*_DOWN, _redis.ResponseError):
                groups = []
            for info in groups:
                if text(info["name"]) == self.group:
                    pending = int(info["pending"])
                    raw_lag = info.get("lag")
                    lag = None if raw_lag is None else int(raw_lag)
        return BridgeStats(
            outbox=len(self._outbox), connected=self._connected, pending=pending, lag=lag,
            **self._counts,
        )


def _entries_of(response: Any) -> list[tuple[Any, dict[Any, Any] | None]]:
    """The (id, fields) pairs of an XREADGROUP reply, RESP2 or RESP3."""
    if not response:
        return []
    streams = response.values() if isinstance(response, dict) else (s[1] for s in response)
    entries: list[tuple[Any, dict[Any, Any] | None]] = []
    for listed in streams:
        nested = listed and isinstance(listed[0], list) and len(listed) == 1
        pairs = listed[0] if nested else listed  # RESP3 nests one level deeper
        entries += [(entry_id, fields or None) for entry_id, fields in pairs]
    return entries


def _message(error: BaseException) -> str:
    """An exception's message, even when its ``str`` is broken."""
    try:
        return str(error)
    except Exception:
        return safe_repr(error)


def _describe(error: BaseException) -> str:
    """``Type: message`` of an exception, for a log entry."""
    message = _message(error)
    return f"{type(error).__qualname__}: {message}" if message else type(error).__qualname__


def _error_record(handler: str | None, error: BaseException) -> dict[str, str | None]:
    return {"handler": handler, "type": type(error).__qualname__, "message": _message(error)}


def _errors_of(report: EmitReport) -> list[dict[str, str | None]]:
    return [
        _error_record(result.handler.name, result.error)
        for result in report.errors
        if result.error is not None
    ]


def _check_forward(bus: EventBus, forward: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(forward, str):
        forward = (forward,)
    try:
        return tuple(bus._check_subscribable(pattern) for pattern in forward)
    except TypeError as error:
        raise TypeError(f"forward: {error}") from None
    except ValueError as error:  # UnknownEventError is a LookupError: it passes as is
        raise ValueError(f"forward: {error}") from None


def _check_key(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value or value != value.strip():
        raise ValueError(f"{what} must be a non-empty name without surrounding spaces, "
                         f"not {value!r}")
    return value


def _check_count(value: object, what: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, not {value}")
    return value


def _check_seconds(value: object, what: str, *, allow_zero: bool = False) -> float:
    seconds = check_timeout(value, what)
    if seconds is None:
        raise TypeError(f"{what} must be a number of seconds, not None")
    if not math.isfinite(seconds):
        raise ValueError(f"{what} must be a finite number of seconds, not {seconds}")
    if seconds == 0 and not allow_zero:
        raise ValueError(f"{what} must be > 0, not 0")
    return seconds

