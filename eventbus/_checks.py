"""Argument checks shared by the bus, its subscriptions and the Redis bridge:
each says what was wrong with the value it was given."""

from __future__ import annotations

import math

from ._errors import safe_repr

__all__ = ["check_bus_options", "check_count", "check_timeout", "shown"]


def shown(value: object) -> str:
    """A value as an error message shows it: its type, then its repr."""
    return f"{type(value).__name__}: {safe_repr(value)}"


def check_count(value: object, what: str, *, minimum: int) -> int:
    """Validate a whole number of at least ``minimum`` (a bool is no number here)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, not {value}")
    return value


def check_timeout(timeout: object, what: str) -> float | None:
    """Validate a timeout in seconds: ``None`` or a finite non-negative number
    (infinity would not show in ``describe()``'s JSON; ``None`` means no limit)."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError(f"{what} must be a number of seconds or None, not {safe_repr(timeout)}")
    if not math.isfinite(timeout) or timeout < 0:
        raise ValueError(
            f"{what} must be a finite non-negative number of seconds (None for no limit), "
            f"not {safe_repr(timeout)}"
        )
    return float(timeout)


def check_bus_options(name: object, strict: object, on_error: object) -> None:
    """Check ``EventBus``'s name, ``strict`` and ``on_error`` arguments."""
    if not isinstance(name, str):
        raise TypeError(f"bus name must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError("bus name must not be empty")
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, not {type(strict).__name__}")
    if on_error is not None and not callable(on_error):
        raise TypeError(f"on_error must be callable or None, not {type(on_error).__name__}")
