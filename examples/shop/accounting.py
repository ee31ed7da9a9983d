"""Accounting: double-entry ledger lines for sales and membership fees."""

from __future__ import annotations

from eventbus import Event, EventBus

from .events import SALE_CLOSED, SaleClosed
from .store import LedgerEntry, Shop

OWNER = "accounting"


def setup(bus: EventBus, shop: Shop) -> None:
    """Subscribe the accounting module's handlers."""

    @bus.on(SALE_CLOSED, priority=10, owner=OWNER)
    async def book_sale(event: Event[SaleClosed]) -> int:
        sale = event.data
        reference = f"session-{sale.session_id}"
        return await _book(bus, shop, reference, "cash", "sales", sale.total_cents)

    @bus.on("membership.fee_charged", owner=OWNER)
    async def book_fee(event: Event) -> int:
        reference = f"member-{event['member_id']}"
        return await _book(bus, shop, reference, "receivables", "fees", event["amount_cents"])


async def _book(
    bus: EventBus, shop: Shop, reference: str, debit: str, credit: str, cents: int
) -> int:
    shop.ledger += [
        LedgerEntry(reference, debit, debit_cents=cents, credit_cents=0),
        LedgerEntry(reference, credit, debit_cents=0, credit_cents=cents),
    ]
    await bus.emit("ledger.updated", reference=reference, entries=2)
    return 2
