"""Incorrect uses of eventbus's API that mypy must reject.

Each offending line carries ``# type: ignore[<code>]`` and mypy runs with
``--warn-unused-ignores`` (part of ``--strict``): if the API stopped rejecting
a line, its ignore would become unused and the check would fail. The error
code pins why the line is rejected.
"""

from __future__ import annotations

from eventbus import Event, EventBus
from eventbus.testing import recording

bus = EventBus("shop")


def no_argument() -> None: ...


def two_arguments(event: Event, other: int) -> None: ...


def wants_a_str(event: str) -> None: ...


def on_error_too_few(event: Event, error: Exception) -> None: ...


def predicate_of_a_str(name: str) -> bool:
    return True


# ------------------------------------------------------------- handlers

bus.on("sale.closed", no_argument)  # type: ignore[type-var]
bus.on("sale.closed", two_arguments)  # type: ignore[type-var]
bus.on("sale.closed", wants_a_str)  # type: ignore[type-var]
bus.on("sale.closed", "not callable")  # type: ignore[call-overload]
bus.once("sale.closed", no_argument)  # type: ignore[type-var]
bus.subscribed("sale.closed", no_argument)  # type: ignore[type-var]
bus.on("sale.closed")(no_argument)  # type: ignore[type-var]


@bus.on("sale.closed")  # type: ignore[type-var]
def decorated_without_argument() -> None: ...


# ------------------------------------------------------------- options

bus.on("sale.closed", print, priority="high")  # type: ignore[call-overload]
bus.on("sale.closed", print, predicate=predicate_of_a_str)  # type: ignore[arg-type]
bus.on("sale.closed", print, timeout="soon")  # type: ignore[call-overload]
bus.on("sale.closed", print, owner=42)  # type: ignore[call-overload]
bus.on(42, print)  # type: ignore[call-overload]
EventBus("shop", on_error=on_error_too_few)  # type: ignore[arg-type]
EventBus("shop", max_depth="deep")  # type: ignore[arg-type]


# ------------------------------------------------------------- emitting and events


async def emitting() -> None:
    await bus.emit("sale.closed", {"session_id": 1})  # type: ignore[call-overload]
    await bus.emit(name="sale.closed")  # type: ignore[call-overload]
    bus.emit_sync("sale.closed", source=42)  # type: ignore[call-overload]
    report = bus.emit_sync("sale.closed")
    report.ok = True  # type: ignore[misc]


def events(event: Event) -> None:
    event.name = "other"  # type: ignore[misc]
    event.payload["key"] = 1  # type: ignore[index]
    Event("sale.closed", source=1)  # type: ignore[call-overload]


# ------------------------------------------------------------- testing helpers


def testing() -> None:
    with recording(bus) as emitted:
        emitted.assert_emitted(42)  # type: ignore[call-overload]
