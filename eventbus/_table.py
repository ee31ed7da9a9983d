"""The subscription table of one bus and what introspection reads from it.

Subscriptions are kept per key (a name or a pattern) in an insertion-ordered
dict by handler identity, changed in place under the lock: subscribing or
unsubscribing costs the same with one handler on the key or ten thousand.
Readers (route building, introspection) get an immutable tuple of a key's
subscriptions, made under the lock on first read after a change and kept
until the next one, so they see the subscriptions as they were when they
read them.
"""

from __future__ import annotations

import itertools
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, final

from ._handlers import HandlerInfo, Identity, _Subscription, subscription_identity
from ._names import WILDCARD, keys_overlap
from ._options import Options

__all__ = ["SubscriptionTable", "dispatch_order"]

_NONE: Final[tuple[HandlerInfo, ...]] = ()
_FUNCTION: Final = types.FunctionType


def dispatch_order(subscriptions: Iterable[HandlerInfo]) -> list[HandlerInfo]:
    """Higher priority first; equal priorities in subscription order."""
    return sorted(subscriptions, key=lambda info: (-info.priority, info.order))


class RouteCache(Protocol):
    """What holds the routes built from the table (the router): a change replaces them."""

    routes: dict[str, Any]


def _collected_callback(table_ref: weakref.ref[SubscriptionTable]) -> Callable[[object], None]:
    """The weakref callback of a table's weakly held handlers (holds the table weakly)."""

    def collected(ref: object) -> None:
        table = table_ref()
        if table is not None:
            table.has_dead = True
            table.cache.routes = {}
            table.collected(ref)

    return collected


@final
class SubscriptionTable:
    """Every subscription of one bus, by key.

    After each change it empties ``cache.routes`` (the routes built from the
    old subscriptions), by replacing it: an emission reading the old one
    finishes with it. ``on_unused`` is called with a weakly held subscription
    whose handler was collected before it ever ran.
    """

    __slots__ = (
        "__weakref__",
        "_by_key",
        "_lock",
        "_on_collected",
        "_on_unused",
        "_order",
        "_patterns",
        "_snapshots",
        "cache",
        "has_dead",
    )

    def __init__(
        self,
        lock: threading.RLock,
        cache: RouteCache,
        on_unused: Callable[[HandlerInfo], None] | None = None,
    ) -> None:
        self._lock: Final = lock
        self._on_unused: Final = on_unused
        self._order: Final = itertools.count()
        self._by_key: dict[str, dict[Identity, HandlerInfo]] = {}
        """Each key's subscriptions by handler identity, in subscription order."""
        self._snapshots: dict[str, tuple[HandlerInfo, ...]] = {}
        """Each key's subscriptions as a tuple, made on first read after a change."""
        self._patterns = 0
        """How many keys are patterns: none, and a route needs one lookup."""
        self._on_collected: Final = _collected_callback(weakref.ref(self))
        self.cache: Final = cache
        self.has_dead = False
        """A weakly held handler was collected: purge before counting or listing."""

    def collected(self, ref: object) -> None:
        """A weakly held handler or predicate was collected (``ref`` is its dead
        reference): report its subscription if the handler never ran.

        Called from a weakref callback: at any moment, in any thread.
        """
        on_unused = self._on_unused
        if on_unused is None:
            return
        for members in list(self._by_key.values()):  # no lock here: copies made in C
            for info in tuple(members.values()):
                if info._ref is ref:
                    unused = info._unused
                    if unused:
                        unused.clear()
                        on_unused(info)
                    return

    def infos(self, key: str) -> tuple[HandlerInfo, ...]:
        """The subscriptions made with exactly ``key``, in subscription order."""
        snapshot = self._snapshots.get(key)
        if snapshot is None:
            with self._lock:
                snapshot = self._snapshots.get(key)
                if snapshot is None:
                    members = self._by_key.get(key)
                    if members is None:
                        return _NONE
                    snapshot = self._snapshots[key] = tuple(members.values())
        return snapshot

    def has(self, key: str) -> bool:
        """Whether anything is subscribed with exactly ``key``."""
        return key in self._by_key

    def items(self) -> list[tuple[str, tuple[HandlerInfo, ...]]]:
        """A snapshot of (key, subscriptions) pairs, for introspection."""
        with self._lock:  # one instant, as for ``matching``
            return [(key, infos) for key in list(self._by_key) if (infos := self.infos(key))]

    def matching(self, name: str) -> list[tuple[str, tuple[HandlerInfo, ...]]]:
        """The (key, subscriptions) pairs that receive the concrete ``name``:
        the name itself and the patterns of its prefixes (``*``, ``a.*``,
        ``a.b.*`` for ``a.b.c``), each found by lookup."""
        found = []
        # Under the lock: read at one instant, a handler moving from one key to
        # another (``x.y`` to ``x.*``) is never seen under both.
        with self._lock:
            by_key = self._by_key
            if name in by_key:
                found.append((name, self.infos(name)))
            if self._patterns:
                key = WILDCARD
                end = 0
                while True:
                    if key in by_key:
                        found.append((key, self.infos(key)))
                    end = name.find(".", end) + 1
                    if not end:
                        break
                    key = name[:end] + WILDCARD
        return found

    def add(
        self,
        key: str,
        handler: Callable[..., Any],
        options: Options,
        default_timeout: float | None,
    ) -> HandlerInfo | None:
        """Subscribe ``handler`` to a checked ``key``; None if it already was."""
        identity = id(handler) if type(handler) is _FUNCTION else subscription_identity(handler)
        lock = self._lock
        lock.acquire()  # not `with`: a third of the cost of a subscription with one handler
        try:
            if self.has_dead:
                self.purge()
            by_key = self._by_key
            members = by_key.get(key)
            if members is not None:
                known = members.get(identity)
                if known is not None and known.alive:
                    return None
            timeout = default_timeout if options.timeout is None else float(options.timeout)
            info = _Subscription(
                handler, identity, key, options, timeout, next(self._order), self._on_collected
            )
            info.__class__ = HandlerInfo  # read-only from now on
            # Building the subscription (its name, how it is held) may run code
            # that changes this key in this thread, through the re-entrant lock
            # (the handler's __getattr__, a __del__ or weakref callback set off
            # by an allocation): look the key up again before writing.
            members = by_key.get(key)
            if members is None:
                members = by_key[key] = {}
                if key[-1] == WILDCARD:
                    self._patterns += 1
            else:
                known = members.get(identity)
                if known is not None:
                    if known.alive:
                        return None  # subscribed meanwhile, by the code that ran
                    del members[identity]  # a dead one with the same identity: replaced
            members[identity] = info  # type: ignore[assignment]
            self._snapshots.pop(key, None)
            self.cache.routes = {}
        finally:
            lock.release()
        return info  # type: ignore[return-value]

    def remove(self, doomed: Iterable[HandlerInfo]) -> None:
        """Drop these subscriptions if they are still there."""
        with self._lock:
            self._remove_locked(doomed)

    def _remove_locked(self, doomed: Iterable[HandlerInfo]) -> None:
        changed = False
        for info in doomed:
            changed = self._drop(info) or changed
        if changed:
            self.cache.routes = {}

    def _drop(self, info: HandlerInfo) -> bool:
        """Remove one subscription, under the lock; True if it was there."""
        key = info.pattern
        members = self._by_key.get(key)
        if members is None or members.get(info._identity) is not info:
            return False
        del members[info._identity]
        self._snapshots.pop(key, None)
        if not members:
            del self._by_key[key]
            if key[-1] == WILDCARD:
                self._patterns -= 1
        return True

    def discard(self, info: HandlerInfo) -> None:
        """Drop one subscription if it is still there (a claimed once, ``subscribed``)."""
        self.remove((info,))

    def off(self, key: str, handler: Callable[..., Any]) -> bool:
        """Drop ``handler``'s subscription to exactly ``key``; True if there was one."""
        identity = id(handler) if type(handler) is _FUNCTION else subscription_identity(handler)
        lock = self._lock
        lock.acquire()
        try:
            members = self._by_key.get(key)
            if members is not None:
                info = members.get(identity)
                if info is not None and info.alive and self._drop(info):
                    self.cache.routes = {}
                    return True
        finally:
            lock.release()
        return False

    def clear(self, key: str | None, owner: str | None) -> int:
        """Drop the subscriptions made with exactly ``key`` and/or by ``owner``
        (all when both are None); return how many."""
        self.purge()
        with self._lock:
            doomed = [
                info
                for subscribed_key, infos in self.items()
                if key is None or subscribed_key == key
                for info in infos
                if (owner is None or info.owner == owner) and info.alive
            ]
            self._remove_locked(doomed)
        return len(doomed)

    def purge(self) -> None:
        """Forget subscriptions whose weakly held handler was collected."""
        if self.has_dead:
            with self._lock:
                self.has_dead = False
                self.remove([info for _, infos in self.items() for info in infos if not info.alive])

    def listeners(self, pattern: str) -> tuple[HandlerInfo, ...]:
        """Every live subscription that could receive an event matching ``pattern``,
        in dispatch order."""
        self.purge()
        return tuple(
            dispatch_order(
                info
                for key, infos in self.items()
                if keys_overlap(key, pattern)
                for info in infos
                if info.alive
            )
        )

    def count(self) -> int:
        """How many live subscriptions there are."""
        self.purge()
        return sum(1 for _, infos in self.items() for info in infos if info.alive)

    def keys(self) -> tuple[str, ...]:
        """The names and patterns that have subscriptions, sorted."""
        self.purge()
        return tuple(sorted(self._by_key))

    def describe(self, is_declared: Callable[[str], bool]) -> list[dict[str, Any]]:
        """A JSON-serialisable view of every key and its live subscriptions."""
        self.purge()
        return [
            {
                "topic": key,
                "declared": is_declared(key),
                "handlers": [
                    {
                        "name": info.name,
                        "priority": info.priority,
                        "once": info.once,
                        "weak": info.weak,
                        "timeout": info.timeout,
                        "has_predicate": info.has_predicate,
                        "owner": info.owner,
                    }
                    for info in infos
                    if info.alive
                ],
            }
            for key, infos in sorted(self.items())
        ]
