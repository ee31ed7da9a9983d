"""``eventbus.fastapi.attach`` and the application's lifespan: the bus closes
after the application's own shutdown code and reopens at the next startup
(issue 12, item 6)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from eventbus import Event, EventBus
from eventbus.fastapi import Events, attach

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

HANG_GUARD = 60.0  # seconds; only reached when shutdown hangs, which is a failure


def client_for(app: FastAPI) -> TestClient:
    """FastAPI's TestClient, imported without Starlette's httpx deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    return TestClient(app)


def counting_app(bus: EventBus) -> tuple[FastAPI, list[str]]:
    """An application whose route emits ``thing.done``, which a handler counts."""
    app = FastAPI()
    attach(app, bus)
    seen: list[str] = []
    bus.on("thing.done", lambda event: seen.append(event.name))

    @app.post("/things")
    async def make_thing(events: Events) -> dict[str, bool]:
        report = await events.emit("thing.done")
        return {"ok": report.ok}

    return app, seen


class TestShutdownOrder:
    def test_app_shutdown_may_emit(self) -> None:
        """The application's own lifespan shutdown code may still emit."""
        seen: list[str] = []
        bus = EventBus("api")

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            await bus.emit("app.stopping")

        app = FastAPI(lifespan=lifespan)
        attach(app, bus)
        bus.on("app.stopping", lambda event: seen.append(event.name))

        with client_for(app):
            pass

        assert seen == ["app.stopping"]
        assert bus.closed is True

    async def test_app_shutdown_publish_finishes(self) -> None:
        """An emission the app's shutdown code publishes finishes before the bus closes."""
        finished: list[str] = []
        bus = EventBus("api")

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            bus.publish("app.stopping")

        async def handler(event: Event) -> None:
            await asyncio.sleep(0)
            finished.append(event.name)

        app = FastAPI(lifespan=lifespan)
        attach(app, bus)
        bus.on("app.stopping", handler)

        async with asyncio.timeout(HANG_GUARD), app.router.lifespan_context(app):
            pass

        assert finished == ["app.stopping"]
        assert bus.closed is True


class TestRestart:
    def test_second_client_works(self) -> None:
        """A second ``with TestClient(app)`` on the same application emits again."""
        app, _ = counting_app(EventBus("api"))
        with client_for(app) as client:
            client.post("/things")

        with client_for(app) as client:
            response = client.post("/things")

        assert response.status_code == 200
        assert response.json() == {"ok": True}

    def test_subscriptions_survive(self) -> None:
        """The subscriptions made when building the app still run after a restart."""
        app, seen = counting_app(EventBus("api"))
        with client_for(app) as client:
            client.post("/things")

        with client_for(app) as client:
            client.post("/things")

        assert seen == ["thing.done", "thing.done"]

    def test_closed_after_each_run(self) -> None:
        """The bus is open while the application runs and closed after each run."""
        bus = EventBus("api")
        app, _ = counting_app(bus)
        states: list[bool] = []
        for _ in range(2):
            with client_for(app):
                states.append(bus.closed)
            states.append(bus.closed)

        assert states == [False, True, False, True]


class TestDrainOnly:
    async def test_close_false_drains(self) -> None:
        """With close=False, shutdown waits for published emissions and leaves the bus open."""
        app = FastAPI()
        bus = attach(app, EventBus("api"), close=False)
        started = asyncio.Event()
        release = asyncio.Event()
        finished: list[str] = []

        @bus.on("slow.work")
        async def slow(event: Event) -> None:
            started.set()
            await release.wait()
            finished.append(event.name)

        async def run() -> None:
            async with app.router.lifespan_context(app):
                bus.publish("slow.work")
                await started.wait()

        running = asyncio.create_task(run())
        await started.wait()
        for _ in range(5):
            await asyncio.sleep(0)
        assert not running.done()
        release.set()
        await asyncio.wait_for(running, HANG_GUARD)

        assert finished == ["slow.work"]
        assert bus.closed is False

    def test_close_false_restarts(self) -> None:
        """With close=False, a second run of the lifespan works too."""
        bus = EventBus("api")
        app = FastAPI()
        attach(app, bus, close=False)
        seen: list[str] = []
        bus.on("thing.done", lambda event: seen.append(event.name))

        @app.post("/things")
        def make_thing(events: Events) -> None:
            events.emit_sync("thing.done")

        for _ in range(2):
            with client_for(app) as client:
                client.post("/things")

        assert seen == ["thing.done", "thing.done"]
