"""Correct uses of typed events (``Topic[T]``): mypy --strict and pyright must
accept this file as it is; ``assert_type`` pins what the typed API returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, assert_type

import pydantic

from eventbus import EmitReport, Event, EventBus, Topic
from eventbus.testing import recording


@dataclass(frozen=True)
class SaleClosed:
    sale_id: str
    total_cents: int


class SaleModel(pydantic.BaseModel):
    sale_id: str


class SaleDict(TypedDict):
    sale_id: str


SALE_CLOSED = Topic("sale.closed", SaleClosed)
SALE_MODEL = Topic("sale.model", SaleModel)
SALE_DICT = Topic("sale.dict", SaleDict)
SALE_MAPPING = Topic("sale.mapping", {"sale_id": str})
assert_type(SALE_CLOSED, Topic[SaleClosed])
assert_type(SALE_MODEL, Topic[SaleModel])
assert_type(SALE_DICT, Topic[SaleDict])
assert_type(SALE_MAPPING, Topic[Mapping[str, Any]])
bus = EventBus()


@bus.on(SALE_CLOSED)
async def write_ledger(event: Event[SaleClosed]) -> None:
    assert_type(event.data, SaleClosed)
    assert_type(event.data.sale_id, str)


@bus.on(SALE_CLOSED, priority=2)
def count(event: Event[SaleClosed]) -> int:
    return event.data.total_cents


def untyped(event: Event) -> None:
    assert_type(event.data, Mapping[str, Any])


def any_data(event: Event[Any]) -> None: ...


def loose(event: object) -> None: ...


bus.on("sale.*", untyped)
bus.on(SALE_CLOSED, any_data)
bus.on(SALE_CLOSED, loose)
bus.once(SALE_MODEL, lambda event: print(event.data.sale_id))
bus.on(SALE_DICT, lambda event: print(event.data["sale_id"]))
assert_type(count(Event(SALE_CLOSED, SaleClosed("S", 1))), int)
assert_type(Event(SALE_CLOSED, SaleClosed("S", 1)), Event[SaleClosed])
assert_type(Event("sale.closed", {"a": 1}).data, Mapping[str, Any])
with bus.subscribed(SALE_CLOSED, count) as subscribed:
    assert_type(subscribed(Event(SALE_CLOSED, SaleClosed("S", 1))), int)
bus.off(SALE_CLOSED, count)
bus.declare(SALE_CLOSED)
bus.declare("sale.other", payload=SaleClosed)
bus.listeners(SALE_CLOSED)
bus.has_listeners(SALE_CLOSED)
with bus.muted(SALE_CLOSED, "sale.*"), bus.record(SALE_CLOSED):
    pass


async def emitting() -> None:
    assert_type(await bus.emit(SALE_CLOSED, SaleClosed("S", 1)), EmitReport)
    await bus.emit(SALE_CLOSED, sale_id="S", total_cents=1, source="till")
    await bus.emit(SALE_MODEL, SaleModel(sale_id="S"))
    sale: SaleDict = {"sale_id": "S"}  # mypy needs the annotation to see a SaleDict
    await bus.emit(SALE_DICT, sale)
    await bus.emit(SALE_DICT, sale_id="S")
    await bus.emit(SALE_MAPPING, sale_id="S")
    await bus.emit(SALE_MAPPING, {"sale_id": "S"})
    bus.emit_sync(SALE_CLOSED, SaleClosed("S", 1), source="till")
    await bus.publish(SALE_CLOSED, SaleClosed("S", 1))
    await bus.emit("sale.closed", sale_id="S")


def testing_helpers() -> None:
    with recording(bus, SALE_CLOSED) as emitted:
        pass
    assert_type(emitted.assert_emitted(SALE_CLOSED, sale_id="S"), Event[SaleClosed])
    assert_type(emitted.assert_emitted_once(SALE_CLOSED).data.total_cents, int)
    assert_type(emitted.assert_emitted("sale.closed"), Event)
    assert_type(emitted.find(SALE_MODEL), list[Event[SaleModel]])
    emitted.assert_not_emitted(SALE_DICT)
    emitted.assert_emitted_in_order([SALE_CLOSED, (SALE_MODEL, {"sale_id": "S"}), "sale.*"])


def typed_predicate(event: Event[SaleClosed]) -> bool:
    return event.data.total_cents > 0


bus.on(SALE_CLOSED, count, predicate=typed_predicate)
bus.on(SALE_CLOSED, count, predicate=lambda event: event.data.total_cents > 0)
bus.once(SALE_CLOSED, count, predicate=lambda event: event.data.sale_id != "")
bus.on("sale.closed", untyped, predicate=lambda event: event["total_cents"] > 0)
