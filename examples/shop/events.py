"""The shop's event catalog: every event a module may emit or listen to.

The bus is strict, so a typo in an event name fails at once (with a
did-you-mean suggestion), and each payload is checked before any handler runs.
"""

from __future__ import annotations

from eventbus import EventBus


def declare_events(bus: EventBus) -> None:
    """Declare the shop's events on ``bus``."""
    bus.declare(
        "sale.closed",
        description="a till session was closed; emitted by the API",
        payload={"session_id": int, "total_cents": int, "member_id": int | None},
    )
    bus.declare(
        "article.imported",
        description="an article was added to the catalog; emitted by the API",
        payload={"sku": str, "name": str},
    )
    bus.declare(
        "member.created",
        description="someone joined; published by the API",
        payload={"member_id": int, "name": str, "email": str},
    )
    bus.declare(
        "ledger.updated",
        description="accounting wrote ledger entries",
        payload={"reference": str, "entries": int},
    )
    bus.declare(
        "barcode.generated",
        description="barcodes rendered the barcode of an article",
        payload={"sku": str, "barcode": str},
    )
    bus.declare(
        "membership.fee_charged",
        description="membership charged a new member's yearly fee",
        payload={"member_id": int, "amount_cents": int},
    )
