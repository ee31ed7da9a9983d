"""Membership: welcome mail and yearly fee for new members, loyalty points on sales."""

from __future__ import annotations

from eventbus import Event, EventBus

from .events import SALE_CLOSED, SaleClosed
from .store import Shop

OWNER = "membership"
YEARLY_FEE_CENTS = 2500


def setup(bus: EventBus, shop: Shop) -> None:
    """Subscribe the membership module's handlers."""

    @bus.on("member.created", owner=OWNER)
    async def welcome(event: Event) -> None:
        member = shop.members[event["member_id"]]
        await shop.mailer.send(member.email, f"Welcome, {member.name}!")
        member.welcomed = True
        await bus.emit(
            "membership.fee_charged", member_id=member.member_id, amount_cents=YEARLY_FEE_CENTS
        )

    @bus.on(SALE_CLOSED, owner=OWNER, predicate=lambda event: event["member_id"] is not None)
    def credit_points(event: Event[SaleClosed]) -> int:
        sale = event.data
        assert sale.member_id is not None  # the predicate let only members' sales through
        points = sale.total_cents // 100
        shop.members[sale.member_id].loyalty_points += points
        return points
