"""Declared events: their description, payload types and whether they may re-enter."""

from __future__ import annotations

import difflib
import threading
import types
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, final

from ._errors import PayloadError, UnknownEventError, safe_repr
from ._names import is_pattern, key_matches
from ._topic import Topic, checked_mapping, shape_of

__all__ = [
    "Catalog",
    "EventSpec",
    "PayloadCheck",
    "check_payload",
    "make_spec",
    "suggest",
    "topic_spec",
]

PayloadCheck = tuple[tuple[str, Any], ...]
"""(key, expected type) pairs, checked in declaration order."""


@final
@dataclass(frozen=True, slots=True)
class EventSpec:
    """A declared event, as ``declare`` records it and ``catalog`` lists it."""

    name: str
    description: str = ""
    payload: Mapping[str, Any] | None = field(default=None, hash=False)
    """Required payload keys and the type each value must be an instance of."""
    reentrant: bool = False
    """Whether the event may be emitted again inside its own chain."""
    data_type: type | None = None
    """The declared data type (dataclass, ``TypedDict``, pydantic model), if any:
    emissions of the name build it (``event.data``)."""

    @property
    def payload_check(self) -> PayloadCheck:
        return tuple(self.payload.items()) if self.payload else ()


def make_spec(name: str, description: object, payload: object, reentrant: object) -> EventSpec:
    """Validate ``declare``'s arguments and build the spec."""
    if not isinstance(description, str):
        raise TypeError(f"description must be a str, not {type(description).__name__}")
    if not isinstance(reentrant, bool):
        raise TypeError(f"reentrant must be a bool, not {type(reentrant).__name__}")
    if payload is None:
        return EventSpec(name, description, None, reentrant)
    if isinstance(payload, type):
        shape_of(payload)  # TypeError for an unsupported class
        return EventSpec(name, description, None, reentrant, payload)
    if not isinstance(payload, Mapping):
        raise TypeError(
            "payload must be a mapping of key to type or a data type (dataclass, TypedDict, "
            f"pydantic model), not {type(payload).__name__}"
        )
    checked = types.MappingProxyType(dict(checked_mapping(payload)))
    return EventSpec(name, description, checked, reentrant)


def topic_spec(
    topic: Topic[Any], description: object, payload: object, reentrant: object
) -> EventSpec:
    """``declare(topic)``: the spec the topic describes (it brings its own options)."""
    if description != "" or payload is not None or reentrant is not False:
        raise TypeError(
            f"declare({topic!r}) takes the description, data type and re-entrancy from the "
            "topic: give them to Topic(...)"
        )
    data_type = topic.data_type
    if isinstance(data_type, Mapping):
        return EventSpec(topic.name, topic.description, data_type, topic.reentrant)
    return EventSpec(topic.name, topic.description, None, topic.reentrant, data_type)


def check_payload(name: str, check: PayloadCheck, payload: Mapping[str, Any]) -> None:
    """Raise ``PayloadError`` naming every missing or mistyped key at once."""
    for key, expected in check:
        if key not in payload or not isinstance(payload[key], expected):
            raise PayloadError(f"event {name!r}: " + "; ".join(_payload_problems(check, payload)))


def _payload_problems(check: PayloadCheck, payload: Mapping[str, Any]) -> list[str]:
    """One phrase per bad key, in declaration order (types only, never a value)."""
    problems = []
    for key, expected in check:
        if key not in payload:
            problems.append(
                f"payload key {safe_repr(key)} is missing "
                f"(expected {_type_name(expected)}, got nothing)"
            )
        elif not isinstance(payload[key], expected):
            problems.append(
                f"payload key {safe_repr(key)} expected {_type_name(expected)}, "
                f"got {type(payload[key]).__name__}"
            )
    return problems


def _type_name(expected: Any) -> str:
    return expected.__name__ if isinstance(expected, type) else str(expected)


def suggest(name: str, declared: list[str], listed: Collection[str] = ()) -> str:
    """A did-you-mean hint listing the candidates closest to ``name`` (declared
    names, or patterns matching them); else the declared names (``listed``, by
    default the candidates)."""
    close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    declared = sorted(listed) if listed else declared
    if declared:
        return "declared events: " + ", ".join(sorted(declared)[:10])
    return "no event is declared: call bus.declare(...) first"


def _patterns_of(names: Collection[str]) -> list[str]:
    """Every pattern matching at least one of ``names``: ``a.b.c`` gives ``a.*``, ``a.b.*``."""
    patterns: set[str] = set()
    for name in names:
        segments = name.split(".")
        for end in range(1, len(segments)):
            patterns.add(".".join(segments[:end]) + ".*")
    return sorted(patterns)


@final
class Catalog:
    """The events declared on one bus, and strict mode's checks against them."""

    __slots__ = ("_bus_name", "_changed", "_lock", "specs", "strict")

    def __init__(
        self, bus_name: str, strict: bool, lock: threading.RLock, changed: Callable[[], None]
    ) -> None:
        self._bus_name: Final = bus_name
        self._lock: Final = lock
        self._changed: Final = changed
        self.strict: Final = strict
        self.specs: dict[str, EventSpec] = {}
        """Copied on write: readers never lock."""

    def declare(self, spec: EventSpec) -> EventSpec:
        """Record ``spec``; the same again is harmless, a different one a ``ValueError``."""
        with self._lock:
            known = self.specs.get(spec.name)
            if known is not None:
                if known == spec:
                    return known
                raise ValueError(f"event {spec.name!r} is already declared differently: {known}")
            self.specs = {**self.specs, spec.name: spec}
            self._changed()
        return spec

    def sorted(self) -> tuple[EventSpec, ...]:
        """Every declared event, sorted by name."""
        return tuple(spec for _, spec in sorted(self.specs.items()))

    def is_declared(self, key: str) -> bool:
        """Whether ``key`` is a declared name, or a pattern matching one."""
        if is_pattern(key):
            return any(key_matches(key, name) for name in self.specs)
        return key in self.specs

    def require_name(self, name: str) -> None:
        """Strict mode: raise ``UnknownEventError`` unless ``name`` is declared."""
        if self.strict and name not in self.specs:
            raise UnknownEventError(
                f"strict bus {self._bus_name!r}: event {name!r} is not declared; "
                f"{suggest(name, list(self.specs))}"
            )

    def require_key(self, key: str) -> None:
        """Strict mode: raise ``UnknownEventError`` unless ``key`` matches a declared event."""
        if self.strict and not self.is_declared(key):
            if is_pattern(key):
                kind, hint = "pattern", suggest(key, _patterns_of(self.specs), self.specs)
            else:
                kind, hint = "event", suggest(key, list(self.specs))
            raise UnknownEventError(
                f"strict bus {self._bus_name!r}: {kind} {key!r} matches no declared event; {hint}"
            )
