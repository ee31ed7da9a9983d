"""Settling entries with the server, for the inbound side of a Redis bridge.

An ``Acks`` sends, in the background and in as few round trips as the traffic
allows, what the consumer settled: acknowledgements (with the handled event ids
that the dedup window remembers, in the same transaction), and the number of
times a handler started on an entry still running (its attempts), so that a
crash counts a delivery only for the entries a handler was really running.
Before acknowledging an entry it waits until the events its handlers forwarded
are in the stream. What the server does not take is kept and sent again.

Every key it writes shares the stream's hash slot (``{stream}`` hash tags), so
its transactions work on Redis Cluster too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Final, Protocol

from ._entries import Entry, field, text
from ._link import DOWN, Link, describe
from ._options import Options

__all__ = ["Acks", "Forwarding", "slot_prefix"]

MARK_AFTER: Final = 0.01
"""Seconds a first delivery may run before its attempt is written to the server: a
handler that runs longer and crashes its process counts as an attempt of that entry."""
_BACK_OFF: Final = (0.05, 0.1, 0.2, 0.5, 1.0)
_REMEMBER_AND_ACK: Final = """
local seen = tonumber(ARGV[3])
for i = 1, seen do redis.call('SET', KEYS[i + 1], '1', 'PX', ARGV[2]) end
local i, n = 4, #ARGV
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, j))
  i = j + 1
end
return 0
"""
"""KEYS: the stream, then the handled event ids' keys; ARGV: the group, the dedup window
(ms), how many keys, then the entry ids. One script: remembered and acknowledged at once,
in one command whatever the count (a MULTI of one SET per id costs a command each)."""


class Forwarding(Protocol):
    """What the consumer needs of the bridge's outbox: how far it is, and waiting for it."""

    def mark(self) -> int:
        """The number of entries queued so far (those written and those waiting)."""
        ...

    def wait_forwarded(self, mark: int) -> Awaitable[None]:
        """Wait until the first ``mark`` entries ever queued are in the stream."""
        ...


def slot_prefix(stream: str) -> str:
    """A key prefix in the hash slot of ``stream``: the stream's own hash tag if it has
    one (``{shop}:events``), else the whole name as a tag (``{events}``)."""
    start = stream.find("{")
    if start >= 0:
        end = stream.find("}", start + 1)
        if end > start + 1:
            return stream
    return f"{{{stream}}}"


class Acks:
    """The acknowledgements, attempts and dead letters of one consumer of a group."""

    def __init__(self, link: Link, options: Options, outbox: Forwarding | None) -> None:
        assert link.group is not None
        self._link: Final = link
        self._client: Final = link.client
        self._stream: Final = link.stream
        self._group: Final[str] = link.group
        self._name: Final = link.consumer
        self._dedup_ms: Final = options.dedup_ms
        self._dead_letter: Final = options.dead_letter
        self._outbox: Final = outbox
        prefix = slot_prefix(link.stream)
        self._seen_prefix: Final = f"{prefix}:{self._group}:handled:"
        self.attempts_key: Final = f"{prefix}:{self._group}:attempts"
        # What waits to be sent: entries to acknowledge, the event ids they handled (for
        # the dedup window), attempts to write, attempts to forget; the outbox mark to
        # wait for first.
        self._acks: list[str] = []
        self._handled: list[str] = []
        self._marks: dict[str, int] = {}
        self._forget: list[str] = []
        self._forwarded = 0
        self._buried: set[str] = set()
        self._running: tuple[str, int, float] | None = None  # entry id, attempt, since
        self._counted: set[str] = set()  # entries whose attempts are written (or on the way)
        self._wakeup = asyncio.Event()
        self._sent = asyncio.Event()  # set each time nothing is left to send
        self._sent.set()
        self._task: asyncio.Task[None] | None = None
        self._remember_and_ack: Final = (
            None if self._dedup_ms is None else link.client.register_script(_REMEMBER_AND_ACK)
        )

    def __len__(self) -> int:
        """Entries settled but not acknowledged yet."""
        return len(self._acks)

    # ---------------------------------------------------------------- the consumer's side

    def start(self) -> None:
        """Start sending in the background (on the running loop)."""
        if self._task is None or self._task.done():
            # Made here: a bridge started again may run on another loop.
            self._wakeup, self._sent = asyncio.Event(), asyncio.Event()
            if not self._acks and not self._marks:
                self._sent.set()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop sending (what is left stays pending at the server: delivered again)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait((task,))

    def running(self, entry_id: str, attempt: int) -> None:
        """A handler starts on ``entry_id`` (its ``attempt``-th start): should it run
        longer than ``MARK_AFTER``, the attempt is written to the server."""
        self._running = (entry_id, attempt, time.monotonic())

    async def mark_now(self, entry_id: str, attempt: int) -> None:
        """Write the attempt before a handler starts (an entry delivered again: it may be
        the one that crashes its consumers)."""
        await self._client.hset(self.attempts_key, entry_id, attempt)
        self._counted.add(entry_id)
        self._running = (entry_id, attempt, time.monotonic())

    def settle(
        self, entry_id: str, event_id: str | None = None, *, counted: bool, buried: bool = False
    ) -> None:
        """Acknowledge ``entry_id`` (remembering ``event_id`` for the dedup window) once
        what the handlers forwarded so far is in the stream; ``counted``: its attempts
        are written at the server, to forget then; ``buried``: it is dead-lettered
        (acknowledged, not counted as such)."""
        if buried:
            self._buried.add(entry_id)
        running = self._running
        if running is not None and running[0] == entry_id:
            self._running = None
        if entry_id in self._counted:
            self._counted.discard(entry_id)
            counted = True
        self._acks.append(entry_id)
        if event_id is not None and self._dedup_ms is not None:
            self._handled.append(event_id)
        if counted:
            self._forget.append(entry_id)
        if self._outbox is not None:
            self._forwarded = self._outbox.mark()
        self._sent.clear()
        self._wakeup.set()

    def stopped_running(self) -> None:
        """The running entry was not settled (it failed: another delivery comes)."""
        self._running = None

    def lost(self, entry_ids: set[str]) -> None:
        """Another consumer claimed these entries: their attempts are its business."""
        self._counted.difference_update(entry_ids)

    def pending(self) -> set[str]:
        """Entries settled here and not acknowledged yet."""
        return set(self._acks)

    async def flush(self) -> None:
        """Wait until everything settled so far is acknowledged (retried meanwhile)."""
        self.start()
        while self._acks or self._marks:
            self._wakeup.set()
            await self._sent.wait()

    def report_unacked(self) -> None:
        """Log the entries that are settled but could not be acknowledged."""
        if self._acks:
            self._link.log.warning(
                "eventbus.redis.not_acked", count=len(self._acks), **self._link.where()
            )

    # ---------------------------------------------------------------- the sender

    async def _run(self) -> None:
        failures = 0
        wakeup = self._wakeup
        while True:
            if not self._acks and not self._marks:
                self._sent.set()
                running = self._running
                if running is None or running[0] in self._counted:
                    wakeup.clear()
                    await wakeup.wait()
                else:
                    left = running[2] + MARK_AFTER - time.monotonic()
                    if left > 0:
                        wakeup.clear()
                        try:
                            async with asyncio.timeout(left):
                                await wakeup.wait()
                        except TimeoutError:
                            pass
            self._mark_running()
            if not self._acks and not self._marks:
                continue
            try:
                await self._send()
            except Exception as error:  # kept: sent again once the server answers
                if isinstance(error, DOWN):
                    self._link.server_down(error)
                else:
                    self._link.log.error(
                        "eventbus.redis.error", error=describe(error), **self._link.where()
                    )
                await asyncio.sleep(_BACK_OFF[min(failures, len(_BACK_OFF) - 1)])
                failures += 1
                continue
            failures = 0

    def _mark_running(self) -> None:
        """Write the attempt of a first delivery that has been running for ``MARK_AFTER``."""
        running = self._running
        if running is None or running[0] in self._counted:
            return
        entry_id, attempt, since = running
        if time.monotonic() - since >= MARK_AFTER:
            self._marks[entry_id] = attempt
            self._counted.add(entry_id)

    async def _send(self) -> None:
        """One round trip: the attempts to write, then (once what their handlers forwarded
        is in the stream) the acknowledgements, remembered event ids and forgotten attempts
        settled so far, in one transaction."""
        acks, handled, marks, forget = self._acks, self._handled, self._marks, self._forget
        count, remembering, forgetting = len(acks), len(handled), len(forget)
        if count and self._outbox is not None and self._forwarded:
            await self._outbox.wait_forwarded(self._forwarded)
        acked, remembered, forgotten = acks[:count], handled[:remembering], forget[:forgetting]
        marked = dict(marks)
        client = self._client
        if not (remembered or forgotten or marked):
            await client.xack(self._stream, self._group, *acked)
        elif not (acked or remembered or forgotten):
            await client.hset(self.attempts_key, mapping=marked)
        elif not (forgotten or marked):
            await self._remember(remembered, acked, client)
        else:
            async with client.pipeline(transaction=False) as pipe:
                if marked:
                    pipe.hset(self.attempts_key, mapping=marked)
                if remembered:
                    await self._remember(remembered, acked, pipe)
                elif acked:
                    pipe.xack(self._stream, self._group, *acked)
                if forgotten:
                    pipe.hdel(self.attempts_key, *forgotten)
                await pipe.execute()
        self._link.server_up()
        del acks[:count]
        del handled[:remembering]
        del forget[:forgetting]
        for entry_id, attempt in marked.items():
            if marks.get(entry_id) == attempt:
                del marks[entry_id]
        buried = self._buried
        if buried:
            count -= len(buried.intersection(acked))
            buried.difference_update(acked)
        if count:
            self._link.counts["acked"] += count
            self._link.log.debug("eventbus.redis.acked", count=count, **self._link.where())

    async def _remember(self, event_ids: list[str], entry_ids: list[str], client: Any) -> None:
        """Remember handled event ids and acknowledge entries in one script (queued
        only, when ``client`` is a pipeline)."""
        assert self._remember_and_ack is not None
        keys = [self._stream, *(self._seen_prefix + event_id for event_id in event_ids)]
        args = [self._group, self._dedup_ms, len(event_ids), *entry_ids]
        await self._remember_and_ack(keys=keys, args=args, client=client)

    # ---------------------------------------------------------------- reading

    async def already_handled(self, entries: Sequence[Entry]) -> set[str]:
        """Event ids of ``entries`` handled within the dedup window (none without one)."""
        if self._dedup_ms is None:
            return set()
        ids = [event_id for _, fields, _ in entries if (event_id := field(fields, "id"))]
        if not ids:
            return set()
        values = await self._client.mget([self._seen_prefix + event_id for event_id in ids])
        return {event_id for event_id, value in zip(ids, values, strict=True) if value}

    async def attempts(self, entry_ids: Sequence[str]) -> dict[str, int]:
        """How many times a handler started on each of ``entry_ids`` (those known)."""
        if not entry_ids:
            return {}
        values = await self._client.hmget(self.attempts_key, list(entry_ids))
        return {
            entry_id: int(value)
            for entry_id, value in zip(entry_ids, values, strict=True)
            if value is not None
        }

    # ---------------------------------------------------------------- dead letters

    async def bury(
        self,
        entry_id: str,
        fields: dict[Any, Any],
        deliveries: int,
        errors: list[dict[str, str | None]],
        *,
        counted: bool = False,
    ) -> None:
        """Move an entry to the dead-letter stream with its errors; it is acknowledged
        with the next ones.

        Not one transaction: Redis runs the rest of a transaction whose XADD failed,
        which would acknowledge an entry that is nowhere.
        """
        dead = {text(key): text(value) for key, value in fields.items()}
        dead.update(
            {
                "entry_id": entry_id,
                "group": self._group,
                "consumer": self._name,
                "deliveries": str(deliveries),
                "errors": json.dumps(errors, ensure_ascii=False),
            }
        )
        await self._client.xadd(self._dead_letter, dead)
        self._link.counts["dead_lettered"] += 1
        self._link.log.error(
            "eventbus.redis.dead_lettered",
            dead_letter=self._dead_letter,
            entry_id=entry_id,
            event_name=dead.get("name"),
            event_id=dead.get("id"),
            deliveries=deliveries,
            errors=errors,
            **self._link.where(),
        )
        self.settle(entry_id, counted=counted, buried=True)
