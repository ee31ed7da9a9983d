"""The ``Interceptor`` seam: what runs around emissions and handler runs, and
the hooks of those that match a route, collected once with the route.

Dispatch with the hooks lives in ``_intercept``; this module stays light so
that ``_routes`` can import it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, final

from ._event import Event
from ._handlers import HandlerInfo
from ._report import EmitReport

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = [
    "MAX_HEADERS",
    "NO_HEADERS",
    "EmissionHook",
    "HandlerHook",
    "Interception",
    "Interceptor",
    "check_headers",
    "check_interceptor",
]

NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})

MAX_HEADERS: Final = 16
"""Headers an event may carry between processes, at most."""
_MAX_KEY: Final = 64
_MAX_VALUE: Final = 1024
_KEY_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def check_headers(headers: object) -> Mapping[str, str]:
    """``headers`` as a read-only copy, or a clear error: at most ``MAX_HEADERS``
    entries, keys of 1 to 64 lowercase letters, digits, ``-``, ``_`` or ``.``,
    values of at most 1024 printable ASCII characters. They may come from
    another process: nothing larger or stranger is accepted."""
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping of str to str, not {type(headers).__name__}")
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"{len(headers)} headers, at most {MAX_HEADERS} are carried")
    checked: dict[str, str] = {}
    for key, value in headers.items():
        if type(key) is not str or type(value) is not str:
            raise TypeError(
                f"headers must map str to str, not {type(key).__name__} to {type(value).__name__}"
            )
        if not 0 < len(key) <= _MAX_KEY or not _KEY_CHARS.issuperset(key):
            raise ValueError(
                f"header name {key[:_MAX_KEY]!r} is not 1 to {_MAX_KEY} lowercase letters, "
                "digits, '-', '_' or '.'"
            )
        if len(value) > _MAX_VALUE or not value.isascii() or not value.isprintable():
            raise ValueError(
                f"header {key!r}: value is not at most {_MAX_VALUE} printable ASCII characters"
            )
        checked[key] = value
    return MappingProxyType(checked)


EmissionHook = Callable[["EventBus", Event, Mapping[str, str]], Generator[None, EmitReport, None]]
HandlerHook = Callable[[Event, HandlerInfo], Generator[None, "Exception | None", None]]


class Interceptor:
    """Code that runs around emissions and handler runs of a bus
    (``bus.add_interceptor``): timing, metrics, tracing, a request context.

    Subclass it and override the hooks you need; a hook left as it is costs
    nothing. ``emission`` and ``handler`` are generator functions that yield
    exactly once: the code before the ``yield`` runs before, the code after
    runs after, and the ``yield`` returns the outcome. They run in the
    emitter's context (for ``publish``: the task's copy of it), so a context
    variable set before the ``yield`` is seen by the handlers and by the
    emissions they make, and is reset after it.
    """

    def matches(self, name: str) -> bool:
        """Whether this interceptor applies to emissions of ``name`` (asked once
        per route, like ``Tap.matches``; the answer must depend on ``name`` only)."""
        return True

    def emission(
        self, bus: EventBus, event: Event, headers: Mapping[str, str]
    ) -> Generator[None, EmitReport, None]:
        """Around one emission, once the bus has accepted it (taps have seen it):
        before its first handler runs and after its last one; the ``yield``
        returns its ``EmitReport``. ``headers`` are those the event carried from
        another process (``emit_received``), empty for a local emission.
        An exception raised here reaches the emitter."""
        yield

    def handler(self, event: Event, info: HandlerInfo) -> Generator[None, Exception | None, None]:
        """Around one handler run (not around a skipped subscription); the
        ``yield`` returns the handler's exception, or None when it succeeded.
        An exception raised here counts as the handler's failure."""
        yield

    def outgoing(self, event: Event) -> Mapping[str, str]:
        """Headers to carry with ``event`` when it leaves the process: a bridge
        asks ``bus.outgoing_headers(event)`` before sending it, and the receiving
        bus hands them to its interceptors' ``emission`` (e.g. a trace context)."""
        return NO_HEADERS


def check_interceptor(interceptor: object) -> Interceptor:
    """``interceptor`` if it is one whose hooks are generator functions; else a
    ``TypeError`` saying what is wrong (now, not at its first emission)."""
    if not isinstance(interceptor, Interceptor):
        raise TypeError(
            f"add_interceptor() needs an eventbus.Interceptor, not {type(interceptor).__name__}"
        )
    for hook in ("emission", "handler"):
        if _overrides(interceptor, hook) and not inspect.isgeneratorfunction(
            getattr(type(interceptor), hook)
        ):
            raise TypeError(
                f"{type(interceptor).__qualname__}.{hook} must be a generator function "
                "that yields once (code before the yield runs before, code after runs after)"
            )
    return interceptor


def _overrides(interceptor: Interceptor, hook: str) -> bool:
    return getattr(type(interceptor), hook) is not getattr(Interceptor, hook)


@final
class Interception:
    """The hooks of the interceptors that match one route, collected with it."""

    __slots__ = ("emission", "handler", "outgoing")

    def __init__(self, interceptors: tuple[Interceptor, ...]) -> None:
        self.emission: Final[tuple[EmissionHook, ...]] = tuple(
            each.emission for each in interceptors if _overrides(each, "emission")
        )
        self.handler: Final[tuple[HandlerHook, ...]] = tuple(
            each.handler for each in interceptors if _overrides(each, "handler")
        )
        self.outgoing: Final[tuple[Callable[[Event], Mapping[str, str]], ...]] = tuple(
            each.outgoing for each in interceptors if _overrides(each, "outgoing")
        )

    @classmethod
    def of(cls, name: str, interceptors: tuple[Interceptor, ...]) -> Interception | None:
        """The interception of a route of ``name``; None when no interceptor
        that matches it has a hook."""
        interception = cls(tuple(each for each in interceptors if each.matches(name)))
        if interception.emission or interception.handler or interception.outgoing:
            return interception
        return None

    def headers(self, event: Event) -> dict[str, str]:
        """Every matching interceptor's outgoing headers, merged in order."""
        merged: dict[str, str] = {}
        for outgoing in self.outgoing:
            merged.update(outgoing(event))
        return merged
