"""A tour of eventbus: ``python -m eventbus.demo``.

Six small "modules" of a shop backend (accounting, barcodes, membership, a flaky
mailer, a badly written stock module, an audit log) react to each other through
one strict bus without importing each other. ``sale.closed`` is a typed event
(a ``Topic`` of the ``SaleClosed`` dataclass: handlers read ``event.data``); the
others are plain names. The narrative is built from the ``EmitReport``s;
structlog (configured here, as an application does) renders each warning or
error as one line instead of a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

from eventbus import EmitReport, Event, EventBus, EventBusError, HandlerInfo, Topic

log_lines: list[str] = []
incidents: list[str] = []


def short(name: str) -> str:
    """``__main__.Accounting.write_ledger`` -> ``Accounting.write_ledger``."""
    return name.removeprefix(f"{__name__}.")


def one_line(_: Any, level: str, entry: MutableMapping[str, Any]) -> Any:
    """A structlog processor keeping one short line per entry (shown after each step)."""
    keys = ("event_name", "handler", "error_type", "chain")
    fields = " ".join(f"{k}={short(str(entry[k]))}" for k in keys if k in entry)
    log_lines.append(f"log {level}: {entry['event']} {fields}")
    raise structlog.DropEvent


def on_error(event: Event, info: HandlerInfo, error: Exception) -> None:
    incidents.append(f"{event.name} / {short(info.name)}: {type(error).__name__}")


# --------------------------------------------------------------- the events
@dataclass(frozen=True)
class SaleClosed:
    sale_id: str
    total_cents: int


SALE_CLOSED = Topic("sale.closed", SaleClosed, description="a till session closed a sale")


# --------------------------------------------------------------- the modules
class SMTPError(Exception):
    """What a flaky mail server raises."""


class Accounting:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.ledger: list[tuple[str, int]] = []
        bus.on(SALE_CLOSED, self.write_ledger, priority=10, owner="accounting")

    async def write_ledger(self, event: Event[SaleClosed]) -> EmitReport:
        sale = event.data  # a SaleClosed: sale.total_cents is an int, checked
        self.ledger += [("411 customers", sale.total_cents), ("707 sales", -sale.total_cents)]
        return await self.bus.emit("ledger.updated", sale_id=sale.sale_id, entries=2)


class Barcodes:
    def __init__(self, bus: EventBus) -> None:
        bus.on("article.imported", self.make_qr, owner="barcodes")

    def make_qr(self, event: Event) -> str:
        return f"QR<{event['ean']}>"


class Membership:
    def __init__(self, bus: EventBus) -> None:
        self.members: dict[int, str] = {}
        bus.on("member.created", self.register, owner="membership")

    def register(self, event: Event) -> int:
        self.members[event["member_id"]] = event["email"]
        return len(self.members)


class Mailer:
    """Sends a welcome mail first (priority 5); its server is down today."""

    def __init__(self, bus: EventBus) -> None:
        bus.on("member.created", self.welcome, priority=5, owner="mailer")

    async def welcome(self, event: Event) -> None:
        raise SMTPError(f"421 cannot reach mail server for {event['email']}")


class Stock:
    """Badly written: 'refreshes' the sale when the ledger changes, closing a loop."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        bus.on("ledger.updated", self.refresh, owner="stock")

    async def refresh(self, event: Event) -> None:
        await self.bus.emit(SALE_CLOSED, SaleClosed(event["sale_id"], total_cents=0))


class Audit:
    """Sees every event ("*"), last (priority -100)."""

    def __init__(self, bus: EventBus) -> None:
        self.seen: int = 0
        bus.on("*", self.record, priority=-100, owner="audit")

    def record(self, event: Event) -> None:
        self.seen += 1


class Dashboard:
    def refresh(self, event: Event) -> None: ...


# --------------------------------------------------------------- the narrative
def show(report: EmitReport, indent: str = "") -> None:
    event = report.event
    parent = f" parent={event.parent_id}" if event.parent_id else ""
    print(f"{indent}▶ {event.name}  id={event.id}{parent} depth={event.depth}")
    for result in report.results:
        info = result.handler
        who = f"{info.owner}: {short(info.name)} (priority {info.priority})"
        took = f"{result.duration * 1000:.2f} ms"
        if result.error is not None:
            error = f"{type(result.error).__name__}: {result.error}"
            print(f"{indent}  ✗ {who} failed {took}: {error}")
        elif isinstance(result.value, EmitReport):
            print(f"{indent}  → {who} ok {took}, emitted:")
            show(result.value, indent + "      ")
        else:
            value = "" if result.value is None else f" → {result.value!r}"
            print(f"{indent}  → {who} ok {took}{value}")
    print(f"{indent}  ok={report.ok} values={len(report.values)} errors={len(report.errors)}")
    if not indent:  # what was logged meanwhile, once per top-level emission
        print("".join(f"  {line}\n" for line in log_lines), end="")
        log_lines.clear()


async def tour() -> None:
    async with EventBus("shop", strict=True, on_error=on_error) as bus:
        bus.declare(SALE_CLOSED)
        bus.declare("ledger.updated", payload={"sale_id": str, "entries": int})
        bus.declare("article.imported", payload={"ean": str})
        bus.declare("member.created", payload={"member_id": int, "email": str})
        # Handlers are bound methods, held weakly: keep the modules alive.
        accounting, audit = Accounting(bus), Audit(bus)
        modules = [accounting, audit, Barcodes(bus), Membership(bus), Mailer(bus), Stock(bus)]
        print(f"catalog: {', '.join(spec.name for spec in bus.catalog())}")
        order = ", ".join(short(info.name) for info in bus.listeners("member.created"))
        print(f"{bus.listener_count()} subscriptions by {len(modules)} modules")
        print(f"member.created runs, in order: {order}")

        print("\n== 1. an article is imported: barcodes makes its QR code")
        show(await bus.emit("article.imported", source="import", ean="4006381333931"))

        print("\n== 2. a member is created: the mailer fails, membership still runs")
        show(await bus.emit("member.created", source="api", member_id=7, email="ada@example.org"))

        print("\n== 3. a sale is closed: accounting -> ledger.updated -> stock loops back, refused")
        show(await bus.emit(SALE_CLOSED, SaleClosed("S-42", 1250), source="till-1"))

        print("\n== 4. unplug the stock module (clear(owner='stock')) and close another sale")
        print(f"dropped {bus.clear(owner='stock')} subscription(s)")
        show(await bus.emit(SALE_CLOSED, source="till-1", sale_id="S-43", total_cents=800))

        print("\n== 5. mistakes refused before any handler runs")
        mistakes: list[tuple[str | Topic[Any], dict[str, Any]]] = [
            ("sale.close", {"sale_id": "S-44", "total_cents": 1250}),  # typo in the name
            (SALE_CLOSED, {"sale_id": "S-44", "total_cents": "12.50"}),  # wrong type
            (SALE_CLOSED, {"sale_id": "S-44", "total": 1250}),  # a field renamed
        ]
        for name, payload in mistakes:
            try:
                await bus.emit(name, **payload)
            except EventBusError as error:
                print(f"✗ {type(error).__name__}: {error}")

        print("\n== 6. a bound-method handler disappears with its object")
        dashboard = Dashboard()
        bus.on("sale.*", dashboard.refresh, owner="dashboard")
        before = bus.listener_count("sale.closed")
        del dashboard
        gc.collect()
        print(
            f"sale.closed listeners: {before} with the dashboard, "
            f"{bus.listener_count('sale.closed')} once it was collected"
        )

        print("\n== 7. what on_error saw")
        for incident in incidents:
            print(f"  {incident}")
    print(
        f"\nbus closed: {bus.closed}; ledger lines: {len(accounting.ledger)};"
        f" audit saw {audit.seen} events"
    )


def main() -> int:
    log_lines.clear()
    incidents.clear()
    previous = structlog.get_config()
    structlog.configure(
        processors=[one_line],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    try:
        asyncio.run(tour())
    finally:
        structlog.configure(**previous)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
