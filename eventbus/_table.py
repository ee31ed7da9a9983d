"""The subscription table of one bus and what introspection reads from it.

Subscriptions are kept per key (a name or a pattern) as tuples that are
replaced under the lock, never changed in place: an emission or an
introspection call reads whatever tuple is there without locking, and sees
the subscriptions as they were when it read them.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, final

from ._handlers import HandlerInfo, Identity, _Subscription, subscription_identity
from ._names import keys_overlap
from ._options import Options

__all__ = ["SubscriptionTable", "dispatch_order"]

_NONE: Final[tuple[HandlerInfo, ...]] = ()


def dispatch_order(subscriptions: Iterable[HandlerInfo]) -> list[HandlerInfo]:
    """Higher priority first; equal priorities in subscription order."""
    return sorted(subscriptions, key=lambda info: (-info.priority, info.order))


class RouteCache(Protocol):
    """What holds the routes built from the table (the router): a change replaces them."""

    routes: dict[str, Any]


def _find(infos: tuple[HandlerInfo, ...], identity: Identity) -> HandlerInfo | None:
    """The live subscription of the handler with this identity, if any."""
    for known in infos:
        if known._identity == identity and known.alive:
            return known
    return None


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
        self._by_key: dict[str, tuple[HandlerInfo, ...]] = {}
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
        for infos in list(self._by_key.values()):
            for info in infos:
                if info._ref is ref:
                    unused = info._unused
                    if unused:
                        unused.clear()
                        on_unused(info)
                    return

    def items(self) -> list[tuple[str, tuple[HandlerInfo, ...]]]:
        """A snapshot of (key, subscriptions) pairs, for building a route."""
        return list(self._by_key.items())

    def add(
        self,
        key: str,
        handler: Callable[..., Any],
        options: Options,
        default_timeout: float | None,
    ) -> HandlerInfo | None:
        """Subscribe ``handler`` to a checked ``key``; None if it already was."""
        identity = subscription_identity(handler)
        with self._lock:
            if self.has_dead:
                self.purge()
            by_key = self._by_key
            seen = by_key.get(key, _NONE)
            for known in seen:
                if known._identity == identity and known.alive:
                    return None
            timeout = default_timeout if options.timeout is None else float(options.timeout)
            info = _Subscription(
                handler, identity, key, options, timeout, next(self._order), self._on_collected
            )
            info.__class__ = HandlerInfo  # read-only from now on
            new = (*seen, info)
            # Building the subscription (its name, how it is held) and the tuple
            # may run code that changes this key in this thread, through the
            # re-entrant lock: the handler's __getattr__, a __del__ or weakref
            # callback set off by an allocation. Write only a tuple built from
            # the one still there, so that no change is lost.
            current = by_key.get(key, _NONE)
            while current is not seen:
                if _find(current, identity) is not None:
                    return None  # subscribed meanwhile, by the code that ran
                seen = current
                new = (*seen, info)
                current = by_key.get(key, _NONE)
            by_key[key] = new  # type: ignore[assignment]
            self.cache.routes = {}
        return info  # type: ignore[return-value]

    def remove(self, doomed: Iterable[HandlerInfo]) -> None:
        """Drop these subscriptions if they are still there.

        As in ``add``, a key's new tuple is written only if it was built from
        the one still there (building it may run code that changes the key).
        """
        with self._lock:
            self._remove_locked(doomed)

    def _remove_locked(self, doomed: Iterable[HandlerInfo]) -> None:
        by_key = self._by_key
        changed = False
        for info in doomed:
            key = info.pattern
            infos = by_key.get(key, _NONE)
            while info in infos:
                if len(infos) == 1:
                    new = _NONE
                else:
                    index = infos.index(info)
                    new = infos[:index] + infos[index + 1 :]
                current = by_key.get(key, _NONE)
                if current is infos:
                    if new:
                        by_key[key] = new
                    else:
                        del by_key[key]
                    changed = True
                    break
                infos = current  # changed meanwhile: build again from what is there
        if changed:
            self.cache.routes = {}

    def discard(self, info: HandlerInfo) -> None:
        """Drop one subscription if it is still there (a claimed once, ``subscribed``)."""
        self.remove((info,))

    def off(self, key: str, handler: Callable[..., Any]) -> bool:
        """Drop ``handler``'s subscription to exactly ``key``; True if there was one."""
        identity = subscription_identity(handler)
        with self._lock:
            for info in self._by_key.get(key, _NONE):
                if info._identity == identity and info.alive:
                    self._remove_locked((info,))
                    return True
        return False

    def clear(self, key: str | None, owner: str | None) -> int:
        """Drop the subscriptions made with exactly ``key`` and/or by ``owner``
        (all when both are None); return how many."""
        self.purge()
        with self._lock:
            doomed = [
                info
                for subscribed_key, infos in list(self._by_key.items())
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
