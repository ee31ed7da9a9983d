"""Routes: everything an emission of one concrete name needs, resolved once.

A route is built the first time a name is emitted after any change (a
subscription, a declaration, a mute, a recorder) and then reused as is, so
that emitting does one dictionary lookup instead of matching patterns,
sorting by priority and looking up the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, final

from ._catalog import EventSpec, PayloadCheck
from ._handlers import HandlerInfo
from ._names import key_matches
from ._taps import Tap

__all__ = ["Route", "dispatch_order"]

Call = tuple[Callable[..., Any] | None, HandlerInfo]
"""(the callable to call directly, or None when dispatch must check first; the subscription)."""


def dispatch_order(subscriptions: Iterable[HandlerInfo]) -> list[HandlerInfo]:
    """Higher priority first; equal priorities in subscription order."""
    return sorted(subscriptions, key=lambda info: (-info.priority, info.order))


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
        "reentrant",
        "taps",
    )

    def __init__(
        self,
        name: str,
        subscriptions: Iterable[tuple[str, tuple[HandlerInfo, ...]]],
        spec: EventSpec | None,
        mutes: Iterable[str],
        taps: Iterable[Tap],
    ) -> None:
        self.name: Final = name
        self.muted: Final = any(key_matches(pattern, name) for pattern in mutes)
        matching = [
            info
            for key, infos in subscriptions
            if key_matches(key, name)
            for info in infos
            if info.alive
        ]
        self.listening: Final = bool(matching)
        handlers = () if self.muted else tuple(dispatch_order(matching))
        self.handlers: Final[tuple[HandlerInfo, ...]] = handlers
        self.calls: Final[tuple[Call, ...]] = tuple((info.direct, info) for info in handlers)
        self.has_async: Final = any(info.is_async for info in handlers)
        self.payload_check: Final[PayloadCheck] = spec.payload_check if spec else ()
        self.reentrant: Final = spec.reentrant if spec else False
        self.taps: Final = tuple(tap for tap in taps if tap.matches(name))
        self.plain: Final = not self.payload_check and not self.taps
        """Nothing to check or record before dispatch: the emit fast path applies."""
