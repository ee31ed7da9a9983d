"""Declared events: their description, payload types and whether they may re-enter."""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from ._errors import PayloadError, safe_repr

__all__ = ["EventSpec", "PayloadCheck", "check_payload", "make_spec", "suggest"]

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
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping of key to type, not {type(payload).__name__}")
    for key, expected in payload.items():
        if not isinstance(key, str):
            raise TypeError(f"payload keys must be str, not {type(key).__name__}: {safe_repr(key)}")
        try:
            isinstance(None, expected)
        except TypeError:
            raise TypeError(
                f"payload[{safe_repr(key)}] must be a type usable with isinstance, "
                f"not {safe_repr(expected)}"
            ) from None
    return EventSpec(name, description, types.MappingProxyType(dict(payload)), reentrant)


def check_payload(name: str, check: PayloadCheck, payload: Mapping[str, Any]) -> None:
    """Raise ``PayloadError`` naming the first missing or mistyped key."""
    for key, expected in check:
        if key not in payload:
            raise PayloadError(
                f"event {name!r}: payload key {safe_repr(key)} is missing "
                f"(expected {_type_name(expected)}, got nothing)"
            )
        value = payload[key]
        if not isinstance(value, expected):
            raise PayloadError(
                f"event {name!r}: payload key {safe_repr(key)} expected {_type_name(expected)}, "
                f"got {type(value).__name__}"
            )


def _type_name(expected: Any) -> str:
    return expected.__name__ if isinstance(expected, type) else str(expected)


def suggest(name: str, declared: list[str]) -> str:
    """A did-you-mean hint listing the declared names closest to ``name``."""
    close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if declared:
        return "declared events: " + ", ".join(sorted(declared)[:10])
    return "no event is declared: call bus.declare(...) first"
