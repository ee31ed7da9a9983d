"""The shop's HTTP API: it stores what it is given and emits events; the
modules do the rest."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from eventbus.fastapi import Events

from .events import SALE_CLOSED, SaleClosed
from .store import Member, Shop, TillAlreadyClosed

router = APIRouter()


async def get_shop(connection: HTTPConnection) -> Shop:
    shop: Shop = connection.app.state.shop
    return shop


ShopDep = Annotated[Shop, Depends(get_shop)]


class SessionClose(BaseModel):
    total_cents: int = Field(ge=0)
    member_id: int | None = None


class ArticleIn(BaseModel):
    sku: str = Field(min_length=1)
    name: str


class MemberIn(BaseModel):
    name: str
    email: str


@router.post("/sessions/{session_id}/close")
async def close_session(session_id: int, body: SessionClose, events: Events) -> dict[str, Any]:
    """Close a till session: every module reacting to ``sale.closed`` runs
    before the response, in priority order, each isolated from the others."""
    sale = SaleClosed(session_id, body.total_cents, body.member_id)
    report = await events.emit(SALE_CLOSED, sale, source="api")
    return {
        "session_id": session_id,
        "handlers": [result.handler.name for result in report.results],
        "failed": [result.handler.name for result in report.errors],
    }


@router.post("/tills/{till_id}/close")
async def close_till(
    till_id: int, body: SessionClose, events: Events, shop: ShopDep
) -> dict[str, Any]:
    """Close a till session; ``sale.closed`` runs only once the close committed.

    Deferred, the emission is checked now but held until this function has
    returned: a close that fails (the till was already closed: 409) books
    nothing in the ledger.
    """
    events.defer(
        "sale.closed",
        source="api",
        session_id=till_id,
        total_cents=body.total_cents,
        member_id=body.member_id,
    )
    try:
        shop.close_till(till_id)
    except TillAlreadyClosed:
        raise HTTPException(409, f"till session {till_id} is already closed") from None
    return {"till_id": till_id, "closed": True}


@router.post("/articles", status_code=201)
def import_article(body: ArticleIn, events: Events, shop: ShopDep) -> dict[str, Any]:
    """Import an article. A sync route, as code calling blocking libraries
    often is: FastAPI runs it in a worker thread, where ``emit_sync`` runs
    every handler, the async ones on the server's event loop."""
    shop.articles[body.sku] = body.name
    events.emit_sync("article.imported", source="api", sku=body.sku, name=body.name)
    return {"sku": body.sku, "barcode": shop.barcodes.get(body.sku)}


@router.get("/articles/{sku}/barcode.svg")
async def barcode_image(sku: str, shop: ShopDep) -> Response:
    image = shop.barcode_images.get(sku)
    if image is None:
        raise HTTPException(404, f"no barcode for {sku!r}")
    return Response(image, media_type="image/svg+xml")


@router.post("/members", status_code=202)
async def create_member(body: MemberIn, events: Events, shop: ShopDep) -> dict[str, int]:
    """Register a member and answer at once: ``member.created`` is published
    (fire and forget), and the application's shutdown waits for it."""
    member = Member(shop.new_member_id(), body.name, body.email)
    shop.members[member.member_id] = member
    events.publish(
        "member.created",
        source="api",
        member_id=member.member_id,
        name=member.name,
        email=member.email,
    )
    return {"member_id": member.member_id}


@router.get("/members/{member_id}")
async def get_member(member_id: int, shop: ShopDep) -> dict[str, Any]:
    member = shop.members.get(member_id)
    if member is None:
        raise HTTPException(404, f"no member {member_id}")
    return asdict(member)


@router.get("/ledger")
async def ledger(shop: ShopDep) -> list[dict[str, Any]]:
    return [asdict(entry) for entry in shop.ledger]


@router.get("/events")
async def events_overview(events: Events) -> dict[str, Any]:
    """What the bus knows: the catalog and who listens to what."""
    return {
        "catalog": [
            {"name": spec.name, "description": spec.description} for spec in events.catalog()
        ],
        "topics": events.describe(),
    }
