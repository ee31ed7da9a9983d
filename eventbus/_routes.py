"""Routes: everything an emission of one concrete name needs, resolved once.

A route is built the first time a name is emitted after any change (a
subscription, a declaration, a mute, a recorder) and then reused as is, so
that emitting does one dictionary lookup instead of matching patterns,
sorting by priority and looking up the catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, final

from ._catalog import Catalog, EventSpec, PayloadCheck
from ._handlers import HandlerInfo
from ._names import check_name, is_pattern, key_matches
from ._table import SubscriptionTable, dispatch_order
from ._taps import Tap

__all__ = ["MAX_CACHED_ROUTES", "Route", "Router"]

MAX_CACHED_ROUTES: Final = 4096
"""Routes kept at most; past that the cache starts over."""

Call = tuple[Callable[..., Any] | None, HandlerInfo]
"""(the callable to call directly, or None when dispatch must check first; the subscription)."""


@final
class Route:
    """The resolved dispatch plan for one concrete event name."""

    __slots__ = (
        "calls",
        "handlers",
        "has_async",
        "listening",
        "muted",
        "name",
        "payload_check",
        "plain",
        "received",
        "reentrant",
        "taps",
    )

    def __init__(
        self,
        name: str,
        subscriptions: Sequence[tuple[str, tuple[HandlerInfo, ...]]],
        spec: EventSpec | None,
        mutes: Sequence[str],
        taps: Iterable[Tap],
        divert: bool = True,
    ) -> None:
        self.name: Final = name
        self.muted: Final = any(key_matches(pattern, name) for pattern in mutes)
        self.taps: Final = tuple(tap for tap in taps if tap.matches(name))
        diverted = divert and any(getattr(tap, "diverts", False) for tap in self.taps)
        matching = [
            info
            for key, infos in subscriptions
            if key_matches(key, name)
            for info in infos
            if info.alive
        ]
        self.listening: Final = bool(matching)
        handlers = () if self.muted or diverted else tuple(dispatch_order(matching))
        self.handlers: Final[tuple[HandlerInfo, ...]] = handlers
        self.calls: Final[tuple[Call, ...]] = tuple((info.direct, info) for info in handlers)
        self.has_async: Final = any(info.is_async for info in handlers)
        self.payload_check: Final[PayloadCheck] = spec.payload_check if spec else ()
        self.reentrant: Final = spec.reentrant if spec else False
        self.plain: Final = not self.payload_check and not self.taps
        """Nothing to check or record before dispatch: the emit fast path applies."""
        self.received: Final[Route] = (
            Route(name, subscriptions, spec, mutes, self.taps, divert=False) if diverted else self
        )
        """The route of this name's events made elsewhere (``emit_received``): a tap
        with ``diverts = True`` takes local emissions away from the handlers, not those."""


@final
class Router:
    """The route of every name emitted since the last change, built on first use
    from what decides it: the subscription table, the catalog, mutes and taps.

    Any change to one of them replaces the cache (``invalidate``): emissions
    reading the old one finish with the routes they already had.
    """

    __slots__ = ("_lock", "catalog", "mutes", "routes", "table", "taps")

    def __init__(
        self,
        bus_name: str,
        strict: bool,
        lock: threading.RLock,
        on_unused: Callable[[HandlerInfo], None] | None = None,
    ) -> None:
        self._lock: Final = lock
        self.routes: dict[str, Route] = {}
        self.table: Final = SubscriptionTable(lock, self, on_unused)
        self.catalog: Final = Catalog(bus_name, strict, lock, self.invalidate)
        self.mutes: tuple[str, ...] = ()
        self.taps: tuple[Tap, ...] = ()

    def invalidate(self) -> None:
        """Forget every route (called after any change that could alter one)."""
        self.routes = {}

    def route(self, name: str) -> Route:
        """The route of ``name``, built and cached if it is not cached yet."""
        name = check_name(name)
        routes = self.routes  # read before the tables: a change after this replaces it
        known = routes.get(name)  # a str subclass's plain str may be cached
        if known is not None:
            return known
        catalog = self.catalog
        catalog.require_name(name)
        route = Route(name, self.table.items(), catalog.specs.get(name), self.mutes, self.taps)
        if len(routes) >= MAX_CACHED_ROUTES:
            routes.clear()  # in place: a newer table may have replaced this one meanwhile
        routes[name] = route
        return route

    def listening(self, key: str) -> bool:
        """Whether anything would receive an emission matching ``key`` (a checked
        name or pattern); never ``UnknownEventError``."""
        catalog = self.catalog
        if is_pattern(key) or (catalog.strict and key not in catalog.specs):
            return bool(self.table.listeners(key))
        return self.route(key).listening

    def add_tap(self, tap: Tap) -> None:
        with self._lock:
            self.taps = (*self.taps, tap)
            self.routes = {}

    def remove_tap(self, tap: Tap) -> None:
        with self._lock:
            self.taps = tuple(known for known in self.taps if known is not tap)
            self.routes = {}

    def mute(self, patterns: tuple[str, ...]) -> None:
        with self._lock:
            self.mutes = (*self.mutes, *patterns)
            self.routes = {}

    def unmute(self, patterns: tuple[str, ...]) -> None:
        """Undo one ``mute(patterns)`` (mutes may be nested and overlap)."""
        with self._lock:
            mutes = list(self.mutes)
            for pattern in patterns:
                mutes.remove(pattern)
            self.mutes = tuple(mutes)
            self.routes = {}
