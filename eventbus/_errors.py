"""The errors eventbus raises, all under one base class.

EventBusError
├── ReentrancyError     an emission would loop back into its own chain or nest too deep
├── UnknownEventError   strict mode: the name was never declared
├── PayloadError        the payload does not match the declared event
└── BusClosedError      the bus no longer accepts emissions
"""

from __future__ import annotations

__all__ = [
    "BusClosedError",
    "EventBusError",
    "PayloadError",
    "ReentrancyError",
    "UnknownEventError",
    "safe_repr",
]


def safe_repr(value: object) -> str:
    """``repr(value)`` for an error message, even when that repr is broken."""
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object (repr failed)>"


class EventBusError(Exception):
    """Base class of every error eventbus raises on purpose."""


class ReentrancyError(EventBusError):
    """An emission was refused because it would loop or nest past ``max_depth``.

    ``chain`` holds the event names from the outermost emission to the refused
    one, e.g. ``("sale.closed", "ledger.updated", "sale.closed")``.
    """

    def __init__(self, message: str, chain: tuple[str, ...]) -> None:
        super().__init__(message)
        self.chain = chain


class UnknownEventError(EventBusError, LookupError):
    """Strict mode: an event name or pattern matches no declared event."""


class PayloadError(EventBusError, TypeError):
    """The payload given to ``emit`` does not match the event's declaration."""


class BusClosedError(EventBusError, RuntimeError):
    """The bus was closed with ``aclose()`` and refuses new emissions."""
