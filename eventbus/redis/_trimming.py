"""Watching what ``maxlen`` trimming takes from the groups of a stream.

The writer trims as it appends (``XADD ... MAXLEN ~``); every ``CHECK_EVERY``
seconds it asks the server, in the same pipeline, how many entries the stream
ever had and how many each group has read (Redis 7: ``entries-added``,
``entries-read``). Entries removed from the stream (added - length) that a
group had not read yet (removed - read) are lost to that group: they are
logged (``eventbus.redis.trimmed_unread``) and counted (``trimmed_unread`` in
``BridgeStats``). Redis 6.2 does not keep these counts: there, a group whose
last delivered id is older than the stream's first entry is logged, without
a count.
"""

from __future__ import annotations

import time
from typing import Any, Final

from ._entries import text
from ._link import Link

__all__ = ["CHECK_EVERY", "TrimWatch"]

CHECK_EVERY: Final = 1.0
"""Seconds between two looks at the groups (two XINFO commands in a write pipeline)."""

_HINT: Final = "maxlen trimmed entries this group had not read: raise maxlen, or speed up the group"


class TrimWatch:
    """What trimming took from each group, as the writer of one bridge last saw it."""

    __slots__ = ("_link", "_lost", "_next")

    def __init__(self, link: Link) -> None:
        self._link: Final = link
        self._lost: dict[str, int] = {}  # group -> entries it lost, as last reported
        self._next = 0.0

    def due(self) -> bool:
        """Whether the next write pipeline should ask (see ``ask``)."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + CHECK_EVERY
        return True

    def ask(self, pipe: Any) -> None:
        """Queue the two questions in a pipeline that appends to the stream."""
        pipe.xinfo_stream(self._link.stream)
        pipe.xinfo_groups(self._link.stream)

    def read(self, replies: list[Any]) -> None:
        """Read the answers to ``ask``; log and count what the groups lost since."""
        stream, groups = replies
        if isinstance(stream, Exception) or isinstance(groups, Exception):
            return  # the stream vanished meanwhile, or an old server: next time
        added = stream.get("entries-added")
        length = int(stream.get("length", 0))
        for group in groups:
            name = text(group["name"])
            read = group.get("entries-read")
            if read is None and text(group.get("last-delivered-id") or "") == "0-0":
                read = 0  # a group that has read nothing (Redis leaves the count unset)
            if added is None or read is None:
                self._check_old_server(name, stream, group)
                continue
            lost = max(0, int(added) - length - int(read))
            self._report(name, lost)

    def _report(self, group: str, lost: int) -> None:
        before = self._lost.get(group, 0)
        self._lost[group] = lost
        if lost <= before:
            return
        link = self._link
        link.counts["trimmed_unread"] += lost - before
        link.log.error(
            "eventbus.redis.trimmed_unread",
            lagging_group=group,
            count=lost - before,
            total=lost,
            hint=_HINT,
            **link.where(),
        )

    def _check_old_server(self, group: str, stream: Any, info: Any) -> None:
        first = stream.get("first-entry")
        delivered = info.get("last-delivered-id")
        if not first or delivered is None:
            return
        if _entry_id(text(delivered)) < _entry_id(text(first[0])) and group not in self._lost:
            self._lost[group] = 0
            link = self._link
            link.log.error(
                "eventbus.redis.trimmed_unread",
                lagging_group=group,
                count=None,
                total=None,
                hint=_HINT,
                **link.where(),
            )


def _entry_id(value: str) -> tuple[int, int]:
    millis, _, serial = value.partition("-")
    return int(millis), int(serial or 0)
