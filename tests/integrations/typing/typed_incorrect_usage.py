"""Incorrect uses of typed events (``Topic[T]``) that mypy and pyright must reject.

As in ``incorrect_usage.py``, each offending line carries ``# type: ignore[<code>]``
(mypy's error code) and mypy runs with ``--warn-unused-ignores``; pyright runs
with type-ignore comments disabled and must report exactly these lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventbus import Event, EventBus, Topic


@dataclass(frozen=True)
class SaleClosed:
    sale_id: str


@dataclass(frozen=True)
class Other:
    other_id: int


SALE_CLOSED = Topic("sale.closed", SaleClosed)
bus = EventBus()


def other_handler(event: Event[Other]) -> None: ...


def bare_handler(event: Event) -> None: ...  # Event means Event[Mapping[str, Any]]


# ------------------------------------------------------------- a handler of another event

bus.on(SALE_CLOSED, other_handler)  # type: ignore[arg-type]
bus.on(SALE_CLOSED, bare_handler)  # type: ignore[arg-type]
bus.once(SALE_CLOSED, other_handler)  # type: ignore[arg-type]
bus.subscribed(SALE_CLOSED, other_handler)  # type: ignore[arg-type]
bus.on("sale.closed", other_handler)  # type: ignore[type-var]


@bus.on(SALE_CLOSED)  # type: ignore[arg-type]
def decorated(event: Event[Other]) -> None: ...


# ------------------------------------------------------------- a field that does not exist


@bus.on(SALE_CLOSED)
def reads_a_missing_field(event: Event[SaleClosed]) -> None:
    print(event.data.total_cents)  # type: ignore[attr-defined]


# ------------------------------------------------------------- emitting the wrong data


async def emitting() -> None:
    await bus.emit(SALE_CLOSED, Other(1))  # type: ignore[misc]
    bus.emit_sync(SALE_CLOSED, Other(1))  # type: ignore[misc]
    bus.publish(SALE_CLOSED, Other(1))  # type: ignore[misc]
    await bus.emit(SALE_CLOSED, SaleClosed("S"), sale_id="S")  # type: ignore[call-overload]
    await bus.emit("sale.closed", SaleClosed("S"))  # type: ignore[call-overload]
    Event(SALE_CLOSED, Other(1))  # type: ignore[misc]
    Topic("sale.closed", 42)  # type: ignore[call-overload]


# ------------------------------------------------------------- a predicate of another event


def other_predicate(event: Event[Other]) -> bool:
    return event.data.other_id > 0


bus.on(SALE_CLOSED, print, predicate=other_predicate)  # type: ignore[arg-type]
bus.on(SALE_CLOSED, print, predicate=lambda event: event.data.missing)  # type: ignore[attr-defined]
