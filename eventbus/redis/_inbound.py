"""The inbound side of a Redis bridge: one consumer of a group, which emits
each entry on the local bus and acknowledges it only once every handler
succeeded.

Where an entry can be, for this consumer: read (in hand, being dispatched),
failed (pending, waiting in ``_retries`` for its next delivery), settled and
waiting for its acknowledgement to be sent (``Acks``, which sends them as entries
settle, once what their handlers forwarded is in the stream), or gone. While a
batch runs, a lease task renews this consumer's hold on every entry it still
owns, so only a consumer that stopped answering has its entries claimed.

A delivery counts towards ``max_deliveries`` only when a handler started on the
entry (attempts are kept in Redis, per group): a crash does not use up a delivery
of the entries of its batch that no handler saw.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

from eventbus import BusClosedError, EmitReport, EventBus, EventBusError

from ._acks import Acks
from ._entries import BadEntry, Entry, Received, decode, field, text
from ._link import DOWN, Link, describe, message, redis
from ._options import Options
from ._outbound import Outbox

__all__ = ["Consumer"]

_LEASE_SHARE: Final = 3
"""The lease on held entries is renewed every ``min_idle / _LEASE_SHARE``."""


class Consumer:
    """Reads the stream as one consumer of a group and dispatches on the bus."""

    def __init__(self, link: Link, bus: EventBus, outbox: Outbox | None, options: Options) -> None:
        assert link.group is not None
        self._link: Final = link
        self._client: Final = link.client
        self._stream: Final = link.stream
        self._group: Final[str] = link.group
        self._name: Final = link.consumer
        self._bus: Final = bus
        self._outbox: Final = outbox  # the bridge's own tap: received events are not sent back
        self._options: Final = options
        self._start_at = options.start_at
        self.group_ready = False
        self.idle = False
        """True while waiting for new entries or for the server: nothing in hand."""
        self._retries: dict[str, tuple[float, int]] = {}  # entry id -> (due, attempts)
        self._attempts: dict[str, int] = {}  # attempts of the retries claimed, for _handle
        self._acks: Final = Acks(link, options, outbox)

    # ---------------------------------------------------------------- the loop

    async def create_group(self) -> None:
        """Create the group (and the stream) unless they exist."""
        try:
            await self._client.xgroup_create(
                self._stream, self._group, self._start_at, mkstream=True
            )
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self.group_ready = True

    async def run(self, stopping: asyncio.Event) -> None:
        """Read, dispatch and acknowledge until ``stopping`` is set; wait out a
        lost server; end when the bus is closed."""
        link = self._link
        failures = 0
        history: str | None = "0"  # own pending entries first: a restart resumes them
        next_claim = 0.0
        while not stopping.is_set():
            try:
                self._acks.start()
                if not self.group_ready:
                    await self.create_group()
                now = time.monotonic()
                if now >= next_claim:
                    await self._handle(await self._claim_abandoned())
                    next_claim = now + self._options.min_idle_ms / 2000
                wait = next_claim - now
                if self._retries and not stopping.is_set():
                    next_retry = min(due for due, _ in self._retries.values())
                    if next_retry <= now:
                        await self._handle(await self._claim_retries(now))
                    wait = min(wait, next_retry - now)
                if stopping.is_set():
                    break
                if history is not None:
                    entries, history = await self._read_history(history)
                else:
                    entries = await self._read_new(wait)
                await self._handle(entries)
                link.server_up()
                failures = 0
            except BusClosedError:
                link.log.warning("eventbus.redis.bus_closed", **link.where())
                return
            except redis.ResponseError as error:
                if "NOGROUP" not in str(error):
                    failures = await self._recover(error, failures)
                    continue
                # The stream or group is gone (a server restarted without its data):
                # whatever the stream holds now is new to this group.
                link.log.warning("eventbus.redis.group_missing", **link.where())
                self.group_ready, self._start_at = False, "0"
            except Exception as error:
                failures = await self._recover(error, failures)

    async def _recover(self, error: Exception, failures: int) -> int:
        """Report a failed step and wait (``Link.recover``): idle, so stop() may cancel."""
        self.idle = True
        try:
            return await self._link.recover(error, failures)
        finally:
            self.idle = False

    async def finish(self) -> None:
        """Acknowledge what succeeded but is not acknowledged yet, then stop sending
        (cancelled, e.g. by a timeout: what is left stays pending, delivered again)."""
        try:
            await self._acks.flush()
        finally:
            await self._acks.close()

    def report_unacked(self) -> None:
        """Log the entries that are settled but could not be acknowledged."""
        self._acks.report_unacked()

    # ---------------------------------------------------------------- reading

    async def _read_new(self, wait: float) -> list[Entry]:
        block = max(1, min(self._options.block_ms, round(wait * 1000)))
        self.idle = True
        try:
            response = await self._client.xreadgroup(
                self._group,
                self._name,
                {self._stream: ">"},
                count=self._options.batch,
                block=block,
            )
        finally:
            self.idle = False
        return [(text(entry_id), fields, 1) for entry_id, fields in _entries_of(response)]

    async def _read_history(self, after: str) -> tuple[list[Entry], str | None]:
        """A batch of this consumer's own pending entries after ``after``, and
        where the next batch starts (None when they are all read)."""
        response = await self._client.xreadgroup(
            self._group, self._name, {self._stream: after}, count=self._options.batch
        )
        read = [(text(entry_id), fields) for entry_id, fields in _entries_of(response)]
        if not read:
            return [], None
        for entry_id, _ in read:
            self._retries.pop(entry_id, None)  # reading it delivered it again: handled now
        return await self._with_deliveries(read), read[-1][0]

    async def _claim_abandoned(self) -> list[Entry]:
        """Entries pending for longer than ``min_idle`` (their consumer crashed or stalled)."""
        claimed: list[tuple[str, dict[Any, Any] | None]] = []
        cursor = "0-0"
        while True:
            response = await self._client.xautoclaim(
                self._stream,
                self._group,
                self._name,
                self._options.min_idle_ms,
                start_id=cursor,
                count=self._options.batch,
            )
            cursor = text(response[0])
            claimed += [(text(entry_id), fields) for entry_id, fields in response[1]]
            if len(response) > 2 and response[2]:  # Redis 7 names the ones trimmed meanwhile
                self._log_trimmed([text(entry_id) for entry_id in response[2]])
            if cursor == "0-0" or len(claimed) >= self._options.batch:
                break
        if not claimed:
            return []
        for entry_id, _ in claimed:
            self._retries.pop(entry_id, None)  # due later, but claimed now
        self._link.log.warning("eventbus.redis.claimed", count=len(claimed), **self._link.where())
        return await self._with_deliveries(claimed)

    async def _claim_retries(self, now: float) -> list[Entry]:
        """Failed entries due for another delivery that this consumer still owns,
        claimed again. Each stays scheduled until the claim succeeded, so a lost
        connection delays its retry by ``retry_delay``, not ``min_idle``."""
        retries = self._retries
        due = [entry_id for entry_id, (at, _) in retries.items() if at <= now]
        due = due[: self._options.batch]
        mine = await self._mine(due)
        for entry_id in due:
            if entry_id not in mine:
                del retries[entry_id]  # another consumer claimed it meanwhile
        due = [entry_id for entry_id in due if entry_id in mine]
        if not due:
            return []
        response = await self._client.xclaim(self._stream, self._group, self._name, 0, due)
        for entry_id in due:
            self._attempts[entry_id] = retries.pop(entry_id)[1]
        return [
            (text(claimed), fields or None, max(2, mine[text(claimed)] + 1))
            for claimed, fields in response
        ]

    async def _mine(self, entry_ids: Sequence[str]) -> dict[str, int]:
        """Which of ``entry_ids`` are pending at this consumer, with their delivery counts."""
        if not entry_ids:
            return {}
        async with self._client.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xpending_range(
                    self._stream,
                    self._group,
                    min=entry_id,
                    max=entry_id,
                    count=1,
                    consumername=self._name,
                )
            replies = await pipe.execute()
        return {
            text(item["message_id"]): int(item["times_delivered"])
            for reply in replies
            for item in reply
        }

    async def _with_deliveries(
        self, read: Sequence[tuple[str, dict[Any, Any] | None]]
    ) -> list[Entry]:
        """Attach each entry's delivery count, as the server keeps it."""
        counts = await self._mine([entry_id for entry_id, _ in read])
        return [(entry_id, fields, counts.get(entry_id, 1)) for entry_id, fields in read]

    # ---------------------------------------------------------------- dispatching

    async def _handle(self, entries: list[Entry]) -> None:
        """Dispatch a batch in order, settling each entry as it ends: acknowledged
        (in the background) when it succeeded, delivered again after ``retry_delay``
        when it failed, dead-lettered when it failed too often or can never succeed."""
        if not entries:
            return
        self._link.log.debug("eventbus.redis.consumed", count=len(entries), **self._link.where())
        acks = self._acks
        seen = await acks.already_handled(entries)
        again = [entry_id for entry_id, _, deliveries in entries if deliveries > 1]
        started = await acks.attempts(again) if again else {}
        known = self._attempts
        for entry_id in again:
            if entry_id in known:
                started[entry_id] = max(started.get(entry_id, 0), known.pop(entry_id))
        remaining = list(reversed(entries))  # popped from the end as each is settled
        lost: set[str] = set()
        lease = asyncio.create_task(self._keep_lease(remaining, lost))
        try:
            await self._handle_each(remaining, seen, started, lost)
        except BaseException:
            acks.stopped_running()
            # Not settled yet (lost ones are another consumer's): delivered again after
            # retry_delay, in stream order.
            due = time.monotonic() + self._options.retry_delay
            settled = acks.pending() | lost
            for entry_id, _, _ in reversed(remaining):
                if entry_id not in settled:
                    self._retries[entry_id] = (due, started.get(entry_id, 0))
            raise
        finally:
            lease.cancel()

    async def _handle_each(
        self, remaining: list[Entry], seen: set[str], started: dict[str, int], lost: set[str]
    ) -> None:
        """Settle the entries of ``remaining`` (last first), popping each; skip those in
        ``lost`` (claimed by another consumer). ``started`` tells how many times a handler
        started on an entry before. An unexpected error of one entry is its failure."""
        while remaining:
            entry_id, fields, deliveries = remaining[-1]
            if entry_id in lost:
                remaining.pop()
                continue
            before = started.get(entry_id, 0)
            try:
                await self._handle_one(entry_id, fields, deliveries, before, seen)
            except (BusClosedError, *DOWN):
                raise
            except Exception as error:
                self._acks.stopped_running()
                await self._failed(entry_id, fields, before + 1, [_error_record(None, error)])
            remaining.pop()

    async def _keep_lease(self, remaining: list[Entry], lost: set[str]) -> None:
        """While a batch runs: every min_idle/3, reset the idle time of every entry this
        consumer still owns (the rest of the batch, failed ones waiting for a retry), so
        that no live consumer loses them; note in ``lost`` those another consumer claimed."""
        period = self._options.min_idle_ms / 1000 / _LEASE_SHARE
        while True:
            await asyncio.sleep(period)
            try:
                held = [entry_id for entry_id, _, _ in remaining] + list(self._retries)
                mine = await self._mine(held)
                lost.update(entry_id for entry_id in held if entry_id not in mine)
                for entry_id in lost:
                    self._retries.pop(entry_id, None)
                self._acks.lost(lost)
                if mine:
                    await self._client.xclaim(
                        self._stream, self._group, self._name, 0, list(mine), justid=True
                    )
            except Exception as error:  # the batch itself meets the same trouble
                self._link.log.debug(
                    "eventbus.redis.lease_failed", error=describe(error), **self._link.where()
                )

    async def _handle_one(
        self,
        entry_id: str,
        fields: dict[Any, Any] | None,
        deliveries: int,
        before: int,
        seen: set[str],
    ) -> None:
        """Settle one entry, on which a handler started ``before`` times already."""
        acks = self._acks
        if fields is None:  # trimmed from the stream while pending: nothing left to run
            self._log_trimmed([entry_id])
            acks.settle(entry_id, counted=before > 0)
            return
        if before >= self._options.max_deliveries:
            why = RuntimeError(
                f"a handler started on it {before} times without finishing "
                "(its consumers crashed or stopped meanwhile)"
            )
            await acks.bury(entry_id, fields, before, [_error_record(None, why)], counted=True)
            return
        try:
            received = decode(fields)
        except BadEntry as error:
            errors = [_error_record(None, error)]
            await acks.bury(entry_id, fields, before + 1, errors, counted=before > 0)
            return
        if (seen or received.origin) and self._needs_no_run(received, entry_id, seen):
            acks.settle(entry_id, counted=before > 0)
            return
        attempt = before + 1
        if deliveries > 1 or before:
            await acks.mark_now(entry_id, attempt)  # it may be the one crashing consumers
        else:
            acks.running(entry_id, attempt)
        self._link.counts["consumed"] += 1
        try:
            report = await self._bus.emit_received(
                received.event,
                chain=received.ancestors,
                skip=self._outbox,
                headers=received.headers or None,
            )
        except BusClosedError:
            raise
        except EventBusError as refusal:  # for good: strict mode, payload check or a loop
            errors = [_error_record(None, refusal)]
            await acks.bury(entry_id, fields, attempt, errors, counted=attempt > 1)
            return
        if not report.ok:
            acks.stopped_running()
            await self._failed(entry_id, fields, attempt, _errors_of(report))
            return
        event_id = report.event.id
        if self._options.dedup_ms is not None:
            seen.add(event_id)
        acks.settle(entry_id, event_id, counted=before > 0)

    def _needs_no_run(self, received: Received, entry_id: str, seen: set[str]) -> bool:
        """An echo of this group's own emission, or an event handled already."""
        if received.origin and received.origin == self._group:
            self._link.counts["echoes"] += 1
            return True
        event_id = received.event.id
        if event_id in seen:
            self._link.counts["duplicates"] += 1
            self._link.log.info(
                "eventbus.redis.duplicate",
                event_id=event_id,
                entry_id=entry_id,
                **self._link.where(),
            )
            return True
        return False

    async def _failed(
        self,
        entry_id: str,
        fields: dict[Any, Any] | None,
        attempt: int,
        errors: list[dict[str, str | None]],
    ) -> None:
        """The ``attempt``-th run failed: dead-letter the entry after ``max_deliveries``,
        else leave it pending for another delivery after ``retry_delay``."""
        if fields is not None and attempt >= self._options.max_deliveries:
            await self._acks.bury(entry_id, fields, attempt, errors, counted=attempt > 1)
            return
        self._retries[entry_id] = (time.monotonic() + self._options.retry_delay, attempt)
        self._link.counts["retried"] += 1
        self._link.log.warning(
            "eventbus.redis.retry",
            event_name=field(fields, "name"),
            event_id=field(fields, "id"),
            entry_id=entry_id,
            deliveries=attempt,
            errors=errors,
            **self._link.where(),
        )

    # ---------------------------------------------------------------- settling

    def _log_trimmed(self, entry_ids: list[str]) -> None:
        self._link.log.error(
            "eventbus.redis.trimmed_while_pending", entry_ids=entry_ids, **self._link.where()
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


def _error_record(handler: str | None, error: BaseException) -> dict[str, str | None]:
    return {"handler": handler, "type": type(error).__qualname__, "message": message(error)}


def _errors_of(report: EmitReport) -> list[dict[str, str | None]]:
    return [
        _error_record(result.handler.name, result.error)
        for result in report.errors
        if result.error is not None
    ]
