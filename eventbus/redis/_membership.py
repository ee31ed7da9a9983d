"""A consumer's membership of its group: leaving it on a clean stop, and
removing the names of consumers that are gone.

A consumer is removed (``XGROUP DELCONSUMER``) only when nothing is pending at
it, checked in the same server-side script: the entries of a removed consumer
could no longer be claimed by anyone. A consumer that is live after all and
had nothing pending loses nothing: the server adds it again at its next read.
"""

from __future__ import annotations

from typing import Any, Final

from ._entries import text
from ._link import Link

__all__ = ["leave", "remove_stale"]

_REMOVE_IF_IDLE: Final = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then
    return -1
end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""
"""Removes consumer ARGV[2] of group ARGV[1] of stream KEYS[1], unless an entry
is pending at it (-1)."""


async def _remove(link: Link, name: str) -> bool:
    client: Any = link.client
    result = await client.eval(_REMOVE_IF_IDLE, 1, link.stream, link.group, name)
    return int(result) >= 0


async def leave(link: Link) -> None:
    """Remove this consumer from its group, unless entries are pending at it
    (failed ones waiting for another delivery): it then keeps its name, and
    its entries are claimed by another consumer after ``min_idle``."""
    if await _remove(link, link.consumer):
        link.log.info("eventbus.redis.left_group", **link.where())
    else:
        link.log.warning("eventbus.redis.left_pending", **link.where())


async def remove_stale(link: Link, idle_ms: int) -> list[str]:
    """Remove every other consumer of the group idle for more than ``idle_ms``
    with nothing pending (processes gone without a clean stop); their names."""
    client: Any = link.client
    removed: list[str] = []
    for info in await client.xinfo_consumers(link.stream, link.group):
        name = text(info["name"])
        if name == link.consumer or int(info["pending"]) or int(info["idle"]) <= idle_ms:
            continue
        if await _remove(link, name):
            removed.append(name)
    if removed:
        link.log.info("eventbus.redis.stale_consumers_removed", names=removed, **link.where())
    return removed
