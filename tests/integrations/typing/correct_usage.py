"""Correct uses of eventbus's typed API: mypy --strict must accept this file as it is.

``assert_type`` pins what the API returns, so a change that loses a type
(e.g. a decorator returning ``Callable[..., Any]``) fails the check.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, assert_type

from fastapi import FastAPI

from eventbus import EmitReport, Event, EventBus, EventSpec, HandlerInfo, HandlerResult
from eventbus.fastapi import Events, attach
from eventbus.pytest_plugin import RecordEmissions
from eventbus.testing import Emissions, recording


def on_error(event: Event, handler: HandlerInfo, error: Exception) -> None: ...


async def on_error_async(event: Event, handler: HandlerInfo, error: Exception) -> None: ...


bus = EventBus("shop", on_error=on_error, handler_timeout=0.5)
EventBus("shop", on_error=on_error_async)
EventBus("shop", on_error=lambda event, handler, error: print(handler.name, error))


# ------------------------------------------------------------- subscribing keeps the type


@bus.on("sale.closed", priority=10, owner="accounting")
def write_ledger(event: Event) -> int:
    return 2


@bus.on("sale.closed")
async def send_receipt(event: Event) -> str:
    return "sent"


@bus.once("sale.closed", predicate=lambda event: event["total_cents"] > 0)
def first_sale(event: Event) -> None: ...


def loose(event: object) -> bool:  # accepts more than an Event: fine
    return True


class Dashboard:
    def refresh(self, event: Event) -> None: ...

    async def refresh_async(self, event: Event) -> None: ...


class Handler:
    def __call__(self, event: Event) -> float:
        return 1.0


def takes_options(event: Event, *, verbose: bool = False) -> None: ...


assert_type(write_ledger(Event("sale.closed")), int)
assert_type(first_sale(Event("sale.closed")), None)
dashboard = Dashboard()
assert_type(bus.on("sale.*", dashboard.refresh)(Event("sale.closed")), None)
assert_type(bus.on("*", Handler()), Handler)
assert_type(bus.on("sale.closed", loose)(Event("sale.closed")), bool)
bus.on("sale.closed", dashboard.refresh_async, timeout=1.5, weak=True)
bus.on("sale.closed", functools.partial(takes_options, verbose=True))
bus.on("sale.closed", takes_options)
bus.on("sale.closed", lambda event: None)
with bus.subscribed("sale.closed", Handler()) as subscribed:
    assert_type(subscribed, Handler)
assert_type(bus.off("sale.closed", write_ledger), bool)
assert_type(bus.clear(owner="accounting"), int)


# ------------------------------------------------------------- emitting and reports


async def emitting() -> None:
    assert_type(await send_receipt(Event("sale.closed")), str)
    report = await bus.emit("sale.closed", source="till", session_id=1, name="payload key")
    assert_type(report, EmitReport)
    assert_type(report.ok, bool)
    assert_type(report.event, Event)
    assert_type(report.results, tuple[HandlerResult, ...])
    assert_type(report.errors[0].error, Exception | None)
    assert_type(report.values, tuple[Any, ...])
    assert_type(bus.emit_sync("sale.closed"), EmitReport)
    task = bus.publish("sale.closed", session_id=1)
    assert_type(await task, EmitReport)
    await bus.drain()
    await bus.aclose()
    async with EventBus() as fresh:
        assert_type(fresh, EventBus)


def introspecting(event: Event) -> None:
    assert_type(event.name, str)
    assert_type(event.source, str | None)
    assert_type(event.parent_id, str | None)
    assert_type(event.depth, int)
    assert_type(event.id, str)
    assert_type(event["key"], Any)
    assert_type(bus.declare("sale.closed", payload={"session_id": int}), EventSpec)
    assert_type(bus.listeners("sale.*"), tuple[HandlerInfo, ...])
    assert_type(bus.listeners("sale.*")[0].callback, Callable[[Event], Any] | None)
    with bus.record("sale.*") as recorder:
        assert_type(recorder.names, list[str])


# ------------------------------------------------------------- testing helpers


def testing_helpers(record_emissions: RecordEmissions) -> None:
    emitted = record_emissions(bus, "sale.*")
    assert_type(emitted, Emissions)
    assert_type(emitted.assert_emitted("sale.closed", session_id=1), Event)
    assert_type(emitted.assert_emitted_once("sale.closed"), Event)
    emitted.assert_not_emitted("sale.cancelled", name="a payload key called name")
    matched = emitted.assert_emitted_in_order(["sale.closed", ("ledger.updated", {"entries": 2})])
    assert_type(matched, list[Event])
    with recording(bus) as recorded:
        assert_type(recorded.events, list[Event])


# ------------------------------------------------------------- FastAPI


app = FastAPI()
assert_type(attach(app, bus, close=False), EventBus)


@app.post("/sessions/{session_id}/close")
async def close_session(session_id: int, events: Events) -> bool:
    assert_type(events, EventBus)
    return (await events.emit("sale.closed", session_id=session_id)).ok
