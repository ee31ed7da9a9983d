"""The shop's event catalog: every event a module may emit or listen to.

The bus is strict, so a typo in an event name fails at once (with a
did-you-mean suggestion), and each payload is checked before any handler runs.

``sale.closed``, which three modules handle, is a typed event: a ``Topic``
whose data is the ``SaleClosed`` dataclass, so that its handlers read
``event.data.total_cents`` checked by the type checker. The others are plain
names with a payload declaration, which is enough for one handler each.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventbus import EventBus, Topic


@dataclass(frozen=True)
class SaleClosed:
    """A till session was closed."""

    session_id: int
    total_cents: int
    member_id: int | None = None


SALE_CLOSED = Topic(
    "sale.closed", SaleClosed, description="a till session was closed; emitted by the API"
)


def declare_events(bus: EventBus) -> None:
    """Declare the shop's events on ``bus``."""
    bus.declare(SALE_CLOSED)
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
