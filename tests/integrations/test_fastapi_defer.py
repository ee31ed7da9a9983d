"""``Events.defer``: an emission held until the route returned without raising,
driven over HTTP (httpx's ASGI transport, the application's lifespan running)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
from fastapi import FastAPI, HTTPException
from test_fastapi import serving

from eventbus import EventBus
from eventbus.fastapi import Events, attach
from examples.shop.app import create_app
from examples.shop.store import LedgerEntry, Shop


class Boom(Exception):
    pass


def discards(logs: list[MutableMapping[str, Any]]) -> list[list[str]]:
    return [entry["names"] for entry in logs if entry["event"] == "eventbus.deferred_discarded"]


def app_with_routes() -> tuple[FastAPI, list[str]]:
    """An application whose routes defer "a" then do what their path says."""
    app = FastAPI()
    bus = attach(app, EventBus("api"))
    seen: list[str] = []
    bus.on("a", lambda event: seen.append(event.name))

    @app.post("/ok")
    async def ok(events: Events) -> dict[str, int]:
        events.defer("a")
        await asyncio.sleep(0)
        return {"ran_inside": len(seen)}

    @app.post("/sync-ok")
    def sync_ok(events: Events) -> dict[str, int]:
        events.defer("a")
        return {"ran_inside": len(seen)}

    @app.post("/not-found")
    async def not_found(events: Events) -> None:
        events.defer("a", secret="hunter2")
        raise HTTPException(404, "no such till")

    @app.post("/sync-not-found")
    def sync_not_found(events: Events) -> None:
        events.defer("a")
        raise HTTPException(404, "no such till")

    @app.post("/boom")
    async def boom(events: Events) -> None:
        events.defer("a")
        raise Boom("close failed")

    @app.post("/emit")
    async def emit(events: Events) -> dict[str, int]:
        await events.emit("a")
        return {"ran_inside": len(seen)}

    return app, seen


class TestEventsDefer:
    async def test_held_until_the_route_returned(self) -> None:
        """A deferred emission runs after the route returned, not inside it."""
        app, seen = app_with_routes()
        async with serving(app) as server:
            response = await server.client.post("/ok")
        assert response.json() == {"ran_inside": 0}
        assert seen == ["a"]

    async def test_sync_route(self) -> None:
        """A sync route (in a worker thread) defers the same way."""
        app, seen = app_with_routes()
        async with serving(app) as server:
            response = await server.client.post("/sync-ok")
        assert response.json() == {"ran_inside": 0}
        assert seen == ["a"]

    @pytest.mark.parametrize("path", ["/not-found", "/sync-not-found"])
    async def test_http_exception_discards(self, path: str) -> None:
        """A route raising HTTPException answers with it; its deferred emissions are discarded."""
        app, seen = app_with_routes()
        with structlog.testing.capture_logs() as logs:
            async with serving(app) as server:
                response = await server.client.post(path)
        assert response.status_code == 404
        assert seen == []
        assert discards(logs) == [["a"]]
        assert "hunter2" not in repr(logs)

    async def test_error_discards(self) -> None:
        """A route raising any other exception discards its deferred emissions too."""
        app, seen = app_with_routes()
        async with serving(app) as server:
            with pytest.raises(Boom):
                await server.client.post("/boom")
        assert seen == []

    async def test_emit_still_runs_at_once(self) -> None:
        """events.emit inside a route is unchanged: it runs before the route returns."""
        app, _ = app_with_routes()
        async with serving(app) as server:
            response = await server.client.post("/emit")
        assert response.json() == {"ran_inside": 1}

    async def test_each_request_has_its_own_scope(self) -> None:
        """Concurrent requests do not share what they deferred."""
        app, seen = app_with_routes()
        async with serving(app) as server:
            responses = await asyncio.gather(
                server.client.post("/ok"),
                server.client.post("/not-found"),
                server.client.post("/ok"),
            )
        assert [response.status_code for response in responses] == [200, 404, 200]
        assert seen == ["a", "a"]


# ------------------------------------------------------------------ the example shop


def ledger_of(shop: Shop, till_id: int) -> list[LedgerEntry]:
    return [entry for entry in shop.ledger if entry.reference == f"session-{till_id}"]


class TestShopTills:
    async def test_close_writes_the_ledger(self) -> None:
        """Closing a till session books the sale once the close committed."""
        shop = Shop()
        async with serving(create_app(shop=shop)) as server:
            response = await server.client.post("/tills/7/close", json={"total_cents": 1250})
            ledger = (await server.client.get("/ledger")).json()
        assert response.status_code == 200
        assert response.json() == {"till_id": 7, "closed": True}
        assert 7 in shop.closed_tills
        assert [entry["reference"] for entry in ledger] == ["session-7", "session-7"]

    async def test_failing_close_writes_nothing(self) -> None:
        """A close that fails (already closed: 409) books nothing more."""
        shop = Shop()
        with structlog.testing.capture_logs() as logs:
            async with serving(create_app(shop=shop)) as server:
                first = await server.client.post("/tills/7/close", json={"total_cents": 1250})
                again = await server.client.post("/tills/7/close", json={"total_cents": 999})
        assert (first.status_code, again.status_code) == (200, 409)
        assert [entry.debit_cents + entry.credit_cents for entry in ledger_of(shop, 7)] == [
            1250,
            1250,
        ]
        assert discards(logs) == [["sale.closed"]]
