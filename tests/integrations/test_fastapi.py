"""eventbus.fastapi, and the example shop application driven over HTTP with httpx.

The application runs in-process: its ASGI lifespan is driven as a server
drives it (startup, requests, shutdown) and requests go through httpx's ASGI
transport, so a sync route really runs in a worker thread of the server's loop.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from eventbus import BusClosedError, Event, EventBus
from eventbus.fastapi import Events, attach, get_events
from examples.shop.app import create_app
from examples.shop.barcodes import ean13
from examples.shop.store import Shop

if TYPE_CHECKING:
    from eventbus.pytest_plugin import RecordEmissions

pytest_plugins = ["eventbus.pytest_plugin"]

STOP_TIMEOUT = 60.0  # seconds; only reached when shutdown hangs, which is a failure


class Server:
    """Runs an ASGI application's lifespan as uvicorn does and sends it requests."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shop.test"
        )
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def bus(self) -> EventBus:
        bus: EventBus = self.app.state.events
        return bus

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        async with asyncio.timeout(STOP_TIMEOUT):
            await self._to_app.put({"type": "lifespan.shutdown"})
            message = await self._from_app.get()
            await task
        await self.client.aclose()
        assert message["type"] == "lifespan.shutdown.complete", message


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[Server]:
    server = Server(app)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class GatedMailer:
    """A mailer whose sending waits until the test releases it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, subject: str) -> None:
        self.started.set()
        await self.release.wait()
        self.sent.append((to, subject))


@pytest.fixture
async def shop() -> AsyncIterator[Server]:
    """The example application with every module enabled, started."""
    async with serving(create_app()) as server:
        yield server


def app_with(modules: Iterable[str], shop: Shop | None = None) -> FastAPI:
    return create_app(list(modules), shop=shop)


# ------------------------------------------------------------------ eventbus.fastapi


class TestIntegration:
    async def test_routes_get_the_bus(self) -> None:
        """Routes receive the bus attached to the app."""
        app = FastAPI()
        bus = attach(app, EventBus("api"))

        @app.get("/bus")
        async def which_bus(events: Events) -> dict[str, str]:
            return {"name": events.name, "same": str(events is bus)}

        async with serving(app) as server:
            response = await server.client.get("/bus")
        assert response.json() == {"name": "api", "same": "True"}

    def test_attach_stores_bus(self) -> None:
        """Attach stores the bus in app state."""
        app = FastAPI()
        bus = EventBus("api")
        assert attach(app, bus) is bus
        assert app.state.events is bus

    async def test_no_bus_says_attach(self) -> None:
        """The dependency, without an attached bus, says to call attach."""
        app = FastAPI()

        @app.get("/bus")
        async def which_bus(events: Events) -> str:
            return events.name

        async with serving(app) as server:
            with pytest.raises(RuntimeError, match=r"no EventBus in app\.state\.events.*attach"):
                await server.client.get("/bus")

    def test_second_bus_refused(self) -> None:
        """Attaching a second bus to an app is refused."""
        app = FastAPI()
        first = attach(app, EventBus("first"))
        with pytest.raises(RuntimeError, match=r"already holds <EventBus 'first'"):
            attach(app, EventBus("second"))
        assert app.state.events is first

    def test_attach_non_bus(self) -> None:
        """Attaching something else than a bus is a TypeError."""
        app = FastAPI()
        with pytest.raises(TypeError, match="attach\\(\\) needs an EventBus, not str"):
            attach(app, "shop")  # type: ignore[arg-type]
        assert not hasattr(app.state, "events")

    async def test_get_events_any_connection(self) -> None:
        """get_events returns the attached bus for any connection."""
        app = FastAPI()
        bus = attach(app, EventBus("api"))

        class Connection:  # what get_events reads of a request or a websocket
            def __init__(self, app: FastAPI) -> None:
                self.app = app

        assert await get_events(Connection(app)) is bus  # type: ignore[arg-type]

    async def test_shutdown_closes(self) -> None:
        """Shutdown closes the bus."""
        app = FastAPI()
        bus = attach(app, EventBus("api"))
        async with serving(app):
            assert not bus.closed
        assert bus.closed
        with pytest.raises(BusClosedError, match="'api' is closed"):
            await bus.emit("late.event")

    async def test_shutdown_drains_only(self) -> None:
        """Shutdown with close=False drains without closing."""
        app = FastAPI()
        bus = attach(app, EventBus("api"), close=False)
        finished = []
        release = asyncio.Event()

        @bus.on("slow.work")
        async def slow(event: Event) -> None:
            await release.wait()
            finished.append(event.name)

        server = Server(app)
        await server.start()
        bus.publish("slow.work")
        stopping = asyncio.create_task(server.stop())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not stopping.done()
        release.set()
        await stopping
        assert finished == ["slow.work"]
        assert not bus.closed

    async def test_attach_keeps_lifespan(self) -> None:
        """attach keeps the app's lifespan and finishes emissions before it ends."""
        steps: list[str] = []

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            steps.append("app started")
            yield
            steps.append("app stopped")

        app = FastAPI(lifespan=lifespan)
        bus = attach(app, EventBus("api"))
        release = asyncio.Event()

        @bus.on("slow.work")
        async def slow(event: Event) -> None:
            await release.wait()
            steps.append("emission finished")

        server = Server(app)
        await server.start()
        bus.publish("slow.work")
        stopping = asyncio.create_task(server.stop())
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        await stopping
        assert steps == ["app started", "emission finished", "app stopped"]

    async def test_sync_route_async_handlers(self) -> None:
        """Async handlers of a sync route run on the server loop.

        Even when a sync route makes the bus's first emission: the bus adopts
        the server's loop at startup."""
        app = FastAPI()
        bus = attach(app, EventBus("api"))
        loops: list[asyncio.AbstractEventLoop] = []

        @bus.on("thing.done")
        async def on_loop(event: Event) -> None:
            loops.append(asyncio.get_running_loop())

        @app.post("/sync")
        def sync_route(events: Events) -> None:
            events.emit_sync("thing.done")

        async with serving(app) as server:
            response = await server.client.post("/sync")
        assert response.status_code == 200
        assert loops == [asyncio.get_running_loop()]

    def test_missing_fastapi_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Importing eventbus.fastapi without FastAPI names the extra."""
        monkeypatch.setitem(sys.modules, "fastapi", None)  # makes `import fastapi` fail
        monkeypatch.delitem(sys.modules, "eventbus.fastapi")
        with pytest.raises(ImportError, match=r"pip install 'eventbus\[fastapi\]'"):
            importlib.import_module("eventbus.fastapi")


# ------------------------------------------------------------------ the example shop


class TestExampleShop:
    async def test_close_session_emits(
        self, shop: Server, record_emissions: RecordEmissions
    ) -> None:
        """Closing a session emits sale.closed with its payload."""
        emitted = record_emissions(shop.bus)
        response = await shop.client.post("/sessions/1/close", json={"total_cents": 1250})
        assert response.status_code == 200
        event = emitted.assert_emitted_once("sale.closed", session_id=1, total_cents=1250)
        assert event.source == "api"

    async def test_close_session_ledger(self, shop: Server) -> None:
        """Closing a session makes accounting write two ledger entries."""
        await shop.client.post("/sessions/7/close", json={"total_cents": 1250})
        ledger = (await shop.client.get("/ledger")).json()
        assert ledger == [
            {"reference": "session-7", "account": "cash", "debit_cents": 1250, "credit_cents": 0},
            {"reference": "session-7", "account": "sales", "debit_cents": 0, "credit_cents": 1250},
        ]

    async def test_close_session_chain(
        self, shop: Server, record_emissions: RecordEmissions
    ) -> None:
        """A closed session chains to ledger.updated."""
        emitted = record_emissions(shop.bus)
        await shop.client.post("/sessions/7/close", json={"total_cents": 1250})
        sale, ledger = emitted.assert_emitted_in_order(
            ["sale.closed", ("ledger.updated", {"reference": "session-7", "entries": 2})]
        )
        assert ledger.parent_id == sale.id

    async def test_accounting_first(self, shop: Server) -> None:
        """Accounting reacts to a closed session before membership."""
        member = (
            await shop.client.post("/members", json={"name": "Ada", "email": "a@x.org"})
        ).json()
        response = await shop.client.post(
            "/sessions/1/close", json={"total_cents": 500, "member_id": member["member_id"]}
        )
        handlers = [name.rsplit(".", 1)[-1] for name in response.json()["handlers"]]
        assert handlers == ["book_sale", "credit_points"]

    async def test_loyalty_points(self, shop: Server) -> None:
        """A member's purchase earns loyalty points."""
        member = (
            await shop.client.post("/members", json={"name": "Ada", "email": "a@x.org"})
        ).json()
        await shop.client.post(
            "/sessions/1/close", json={"total_cents": 4250, "member_id": member["member_id"]}
        )
        record = (await shop.client.get(f"/members/{member['member_id']}")).json()
        assert record["loyalty_points"] == 42

    async def test_close_without_modules(self) -> None:
        """A session closes without the optional modules."""
        async with serving(app_with(["accounting"])) as server:
            response = await server.client.post(
                "/sessions/1/close", json={"total_cents": 500, "member_id": 99}
            )
            ledger = (await server.client.get("/ledger")).json()
        assert response.status_code == 200
        assert [name.rsplit(".", 1)[-1] for name in response.json()["handlers"]] == ["book_sale"]
        assert len(ledger) == 2

    async def test_import_barcode(self, shop: Server) -> None:
        """Importing an article returns the barcode its async handler made."""
        response = await shop.client.post("/articles", json={"sku": "TEA-1", "name": "Green tea"})
        assert response.status_code == 201
        assert response.json() == {"sku": "TEA-1", "barcode": ean13("TEA-1")}

    async def test_import_barcode_image(self, shop: Server) -> None:
        """Importing an article renders its barcode image."""
        await shop.client.post("/articles", json={"sku": "TEA-1", "name": "Green tea"})
        response = await shop.client.get("/articles/TEA-1/barcode.svg")
        assert response.headers["content-type"] == "image/svg+xml"
        assert f'data-code="{ean13("TEA-1")}"' in response.text

    async def test_sync_import_route(self, shop: Server) -> None:
        """The sync import route emits from a worker thread."""
        threads: list[int] = []
        shop.bus.on("article.imported", lambda event: threads.append(threading.get_ident()))
        await shop.client.post("/articles", json={"sku": "TEA-1", "name": "Green tea"})
        assert len(threads) == 1
        assert threads[0] != threading.get_ident()

    def test_ean13_check_digit(self) -> None:
        """EAN-13 codes carry a valid check digit."""
        code = ean13("TEA-1")
        digits = [int(digit) for digit in code]
        assert len(code) == 13
        assert code.startswith("200")
        assert sum(digit * (3 if index % 2 else 1) for index, digit in enumerate(digits)) % 10 == 0

    async def test_member_before_mail(self) -> None:
        """Creating a member answers before the welcome mail is sent."""
        mailer = GatedMailer()
        async with serving(app_with(["membership"], Shop(mailer=mailer))) as server:
            response = await server.client.post(
                "/members", json={"name": "Ada", "email": "a@x.org"}
            )
            assert response.status_code == 202
            await mailer.started.wait()
            assert mailer.sent == []
            mailer.release.set()

    async def test_shutdown_finishes_chain(self) -> None:
        """Shutdown finishes a published emission and its chain."""
        mailer = GatedMailer()
        shop = Shop(mailer=mailer)
        server = Server(app_with(["membership", "accounting"], shop))
        await server.start()
        response = await server.client.post("/members", json={"name": "Ada", "email": "a@x.org"})
        member_id = response.json()["member_id"]
        await mailer.started.wait()  # the published member.created is under way
        stopping = asyncio.create_task(server.stop())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not stopping.done()  # shutdown waits for the welcome mail
        mailer.release.set()
        await stopping
        assert mailer.sent == [("a@x.org", "Welcome, Ada!")]
        assert shop.members[member_id].welcomed
        assert [entry.reference for entry in shop.ledger] == [f"member-{member_id}"] * 2

    async def test_events_endpoint(self, shop: Server) -> None:
        """The events endpoint lists the catalog and the subscriptions."""
        overview = (await shop.client.get("/events")).json()
        assert {spec["name"] for spec in overview["catalog"]} >= {"sale.closed", "member.created"}
        owners = {handler["owner"] for topic in overview["topics"] for handler in topic["handlers"]}
        assert owners == {"accounting", "barcodes", "membership"}

    def test_unknown_module(self) -> None:
        """An unknown module is refused with the known ones."""
        with pytest.raises(ValueError, match="unknown module 'acounting': choose among accounting"):
            create_app(["acounting"])
