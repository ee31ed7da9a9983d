"""The errors eventbus raises, all under one base class.

EventBusError
├── ReentrancyError     an emission would loop back into its own chain or nest too deep
├── UnknownEventError   strict mode: the name was never declared
├── PayloadError        the payload does not match the declared event
└── BusClosedError      the bus no longer accepts emissions
"""

from __future__ import annotations

import contextlib

__all__ = [
    "BusClosedError",
    "EventBusError",
    "PayloadError",
    "ReentrancyError",
    "UnknownEventError",
    "safe_repr",
    "scrubbed",
]


def safe_repr(value: object) -> str:
    """``repr(value)`` for an error message, even when that repr is broken."""
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object (repr failed)>"


class EventBusError(Exception):
    """Base class of every error eventbus raises on purpose."""

    __module__ = "eventbus"  # tracebacks show eventbus.EventBusError


class ReentrancyError(EventBusError):
    """An emission was refused because it would loop or nest past ``max_depth``.

    ``chain`` holds the event names from the outermost emission to the refused
    one, e.g. ``("sale.closed", "ledger.updated", "sale.closed")``.
    """

    __module__ = "eventbus"  # tracebacks show eventbus.ReentrancyError

    def __init__(self, message: str, chain: tuple[str, ...]) -> None:
        super().__init__(message)
        self.chain = chain


class UnknownEventError(EventBusError, LookupError):
    """Strict mode: an event name or pattern matches no declared event."""

    __module__ = "eventbus"  # tracebacks show eventbus.UnknownEventError


class PayloadError(EventBusError, TypeError):
    """The payload given to ``emit`` does not match the event's declaration."""

    __module__ = "eventbus"  # tracebacks show eventbus.PayloadError


class BusClosedError(EventBusError, RuntimeError):
    """The bus was closed with ``aclose()`` and refuses new emissions."""

    __module__ = "eventbus"  # tracebacks show eventbus.BusClosedError


def scrubbed(error: Exception) -> Exception:
    """``error`` ready to be raised again by a public entry point (``emit``...).

    A refusal (an ``EventBusError``) loses its traceback: raised again, it shows
    the call of the entry point, not the checks behind it. Any other error keeps
    its traceback, but eventbus's own frames in it forget their locals, where a
    payload value may be (structlog's ``dict_tracebacks`` renders locals).
    Only called when an emission fails before any handler ran.
    """
    if isinstance(error, EventBusError):
        return error.with_traceback(None)
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if str(frame.f_globals.get("__name__", "")).startswith("eventbus."):
            with contextlib.suppress(RuntimeError):  # still executing: the entry point
                frame.clear()
        tb = tb.tb_next
    return error
