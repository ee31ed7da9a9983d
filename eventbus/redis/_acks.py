"""Settling entries with the server, for the inbound side of a Redis bridge:
acknowledging those that are done (and remembering their event ids for the
dedup window), moving those that can never succeed to the dead-letter stream,
and keeping what the server did not take until it answers again."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from ._entries import Entry, field, text
from ._link import Link
from ._options import Options

__all__ = ["Acks"]


class Acks:
    """The acknowledgements and dead letters of one consumer of a group."""

    def __init__(self, link: Link, options: Options) -> None:
        assert link.group is not None
        self._link: Final = link
        self._client: Final = link.client
        self._stream: Final = link.stream
        self._group: Final[str] = link.group
        self._name: Final = link.consumer
        self._dedup_ms: Final = options.dedup_ms
        self._dead_letter: Final = options.dead_letter
        self.unacked: list[str] = []  # settled, not acknowledged yet (the server went away)
        self.buried: list[str] = []  # dead-lettered, not acknowledged yet
        self._unremembered: list[str] = []  # handled event ids the dedup window still needs

    async def finish(self) -> None:
        """Acknowledge what succeeded but is not acknowledged yet (best effort:
        what the server does not take stays pending, and is delivered again)."""
        try:
            await self.leftovers()
        except Exception:
            self.report_unacked()

    def report_unacked(self) -> None:
        """Log the entries that are settled but could not be acknowledged."""
        if self.unacked or self.buried:
            self._link.log.warning(
                "eventbus.redis.not_acked",
                count=len(self.unacked) + len(self.buried),
                **self._link.where(),
            )

    async def leftovers(self) -> None:
        """Acknowledge what was settled while the server did not answer."""
        if self.buried:
            buried, self.buried = self.buried, []
            try:
                await self._client.xack(self._stream, self._group, *buried)
            except BaseException:
                self.buried += buried
                raise
        if self.unacked:
            unacked, self.unacked = self.unacked, []
            handled, self._unremembered = self._unremembered, []
            await self.ack(unacked, handled=handled)

    async def already_handled(self, entries: Sequence[Entry]) -> set[str]:
        """Event ids of ``entries`` handled within the dedup window (none without one)."""
        if self._dedup_ms is None:
            return set()
        ids = [event_id for _, fields, _ in entries if (event_id := field(fields, "id"))]
        if not ids:
            return set()
        values = await self._client.mget([self._seen_key(event_id) for event_id in ids])
        return {event_id for event_id, value in zip(ids, values, strict=True) if value}

    def _seen_key(self, event_id: str) -> str:
        return f"{self._stream}:{self._group}:handled:{event_id}"

    async def ack(self, entry_ids: list[str], *, handled: Sequence[str] = ()) -> None:
        """Acknowledge entries (and remember the handled event ids for the dedup
        window, in the same transaction). Kept for later if the server does not answer."""
        try:
            if not handled:
                await self._client.xack(self._stream, self._group, *entry_ids)
            else:
                async with self._client.pipeline(transaction=True) as pipe:
                    for event_id in handled:
                        pipe.set(self._seen_key(event_id), 1, px=self._dedup_ms)
                    pipe.xack(self._stream, self._group, *entry_ids)
                    await pipe.execute()
        except BaseException:
            self.unacked += entry_ids
            self._unremembered += handled
            raise
        self._link.counts["acked"] += len(entry_ids)
        self._link.log.debug("eventbus.redis.acked", count=len(entry_ids), **self._link.where())

    async def bury(
        self,
        entry_id: str,
        fields: dict[Any, Any],
        deliveries: int,
        errors: list[dict[str, str | None]],
    ) -> None:
        """Move an entry to the dead-letter stream with its errors, then acknowledge it.

        Two commands, not a transaction: Redis runs the rest of a transaction
        whose XADD failed, which would acknowledge an entry that is nowhere.
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
        try:
            await self._client.xack(self._stream, self._group, entry_id)
        except BaseException:
            self.buried.append(entry_id)  # dead-lettered already: only the ack is left
            raise
