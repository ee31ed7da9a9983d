"""Routes: everything an emission of one concrete name needs, resolved once.

A route is built the first time a name is emitted after any change (a
subscription, a declaration, a mute, a recorder) and then reused as is, so
that emitting does one dictionary lookup instead of matching patterns,
sorting by priority and looking up the catalog. Building one costs in
proportion to the subscriptions that match: the name and the patterns of its
prefixes are looked up, never the whole table scanned.

The routes of names subscribed to exactly stay cached (there are as many as
subscribed keys); the others (names reached only through patterns, or by
nothing) are capped at ``MAX_CACHED_ROUTES``: past that, each new one evicts
the one built longest ago, so a cache hit stays a plain dictionary lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, final

from ._catalog import Catalog, EventSpec, PayloadCheck
from ._handlers import HandlerInfo
from ._interceptors import Interception, Interceptor
from ._names import check_name, is_pattern, key_matches
from ._table import SubscriptionTable, dispatch_order
from ._taps import Tap
from ._topic import shape_of

__all__ = ["MAX_CACHED_ROUTES", "Route", "Router"]

MAX_CACHED_ROUTES: Final = 4096
"""Routes of names not subscribed to exactly kept at most; past that the
oldest is evicted."""

Call = tuple[Callable[..., Any] | None, HandlerInfo]
"""(the callable to call directly, or None when dispatch must check first; the subscription)."""


@final
class Route:
    """The resolved dispatch plan for one concrete event name."""

    __slots__ = (
        "calls",
        "confirms",
        "handlers",
        "has_async",
        "intercept",
        "listening",
        "muted",
        "name",
        "needs_loop",
        "payload_check",
        "plain",
        "quiet",
        "received",
        "reentrant",
        "shape",
        "taps",
    )

    def __init__(
        self,
        name: str,
        subscriptions: Sequence[tuple[str, tuple[HandlerInfo, ...]]],
        spec: EventSpec | None,
        mutes: Sequence[str],
        taps: Iterable[Tap],
        interceptors: tuple[Interceptor, ...] = (),
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
        self.shape: Final = shape_of(spec.data_type) if spec and spec.data_type else None
        """The declared data type's shape: every emission's data is built or checked."""
        self.plain: Final = not self.payload_check and not self.taps and self.shape is None
        """Nothing to check or record before dispatch: the emit fast path applies."""
        self.confirms: Final = any(getattr(tap, "confirms", False) for tap in self.taps)
        """A tap of the route may return a confirmation that emissions wait for."""
        self.needs_loop: Final = self.has_async or self.confirms
        """``emit_sync`` cannot run this route inside a running loop's thread."""
        self.intercept: Final = Interception.of(name, interceptors) if interceptors else None
        """The interceptors' hooks, or None: dispatch through ``_intercept`` when set."""
        self.quiet: Final = self.plain and not handlers and self.intercept is None
        """Plain, no handler to run, nothing intercepting: a top-level emission
        only makes its report."""
        self.received: Final[Route] = (
            Route(name, subscriptions, spec, mutes, self.taps, interceptors, divert=False)
            if diverted
            else self
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

    __slots__ = (
        "_evictable",
        "_lock",
        "catalog",
        "interceptors",
        "mutes",
        "routes",
        "table",
        "taps",
    )

    def __init__(
        self,
        bus_name: str,
        strict: bool,
        lock: threading.RLock,
        on_unused: Callable[[HandlerInfo], None] | None = None,
    ) -> None:
        self._lock: Final = lock
        self.routes: dict[str, Route] = {}
        self._evictable: OrderedDict[str, None] = OrderedDict()
        """The cached names not subscribed to exactly, oldest first. Names of a
        cache since replaced stay until they are the oldest: evicting one then
        removes nothing, so the cache still holds at most ``MAX_CACHED_ROUTES``
        of them."""
        self.table: Final = SubscriptionTable(lock, self, on_unused)
        self.catalog: Final = Catalog(bus_name, strict, lock, self.invalidate)
        self.mutes: tuple[str, ...] = ()
        self.taps: tuple[Tap, ...] = ()
        self.interceptors: tuple[Interceptor, ...] = ()

    def invalidate(self) -> None:
        """Forget every route (called after any change that could alter one)."""
        self.routes = {}

    def route(self, name: object) -> Route:
        """The route of ``name``, built and cached if it is not cached yet."""
        name = check_name(name)
        routes = self.routes  # read before the tables: a change after this replaces it
        known = routes.get(name)  # a str subclass's plain str may be cached
        if known is not None:
            return known
        catalog = self.catalog
        catalog.require_name(name)
        table = self.table
        route = Route(
            name,
            table.matching(name),
            catalog.specs.get(name),
            self.mutes,
            self.taps,
            self.interceptors,
        )
        if table.has(name):
            routes[name] = route
            return route
        with self._lock:
            evictable = self._evictable
            if len(evictable) >= MAX_CACHED_ROUTES:
                oldest, _ = evictable.popitem(last=False)
                routes.pop(oldest, None)
            evictable[name] = None
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

    def add_interceptor(self, interceptor: Interceptor) -> None:
        with self._lock:
            if all(known is not interceptor for known in self.interceptors):
                self.interceptors = (*self.interceptors, interceptor)
                self.routes = {}

    def remove_interceptor(self, interceptor: Interceptor) -> None:
        with self._lock:
            self.interceptors = tuple(k for k in self.interceptors if k is not interceptor)
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
