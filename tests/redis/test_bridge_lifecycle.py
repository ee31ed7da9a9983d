"""A consumer's lifecycle: a clean stop (under traffic too) leaves nothing pending at it and
removes it from the group; names of consumers that are gone are removed by the next one to
start; the FastAPI recipe of the guide shuts down clean."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bridge_helpers import (
    STREAM,
    Watch,
    consumer,
    create_group,
    entry,
    failing,
    pending_entries,
)
from fastapi import FastAPI
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.fastapi import attach
from eventbus.redis import RedisBridge


async def consumers_of(client: Redis, group: str = "g") -> dict[str, int]:
    """Each consumer of ``group`` and how many entries are pending at it."""
    infos: Any = await client.xinfo_consumers(STREAM, group)
    return {info["name"].decode(): int(info["pending"]) for info in infos}


async def produce(bus: EventBus, stop: asyncio.Event, sent: list[str]) -> None:
    """Emit until ``stop`` is set, yielding to the loop between emissions."""
    while not stop.is_set():
        sent.append((await bus.emit("order.placed", n=len(sent))).event.id)
        await asyncio.sleep(0)


async def test_a_clean_stop_removes_the_consumer_from_the_group(
    bus: EventBus, redis_client: Redis, watch: Watch
) -> None:
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, consumer="c1"):
        await redis_client.xadd(STREAM, entry(id="e1"))
        await watch.until(lambda: len(watch.handled) == 1)
        assert "c1" in await consumers_of(redis_client)

    assert await consumers_of(redis_client) == {}
    assert watch.logged("eventbus.redis.left_group", consumer="c1")


async def test_a_consumer_with_a_failed_entry_pending_keeps_its_name_at_stop(
    bus: EventBus, redis_client: Redis, watch: Watch
) -> None:
    runs: list[str] = []
    bus.on("order.placed", failing(runs))
    async with consumer(bus, redis_client, consumer="c1", retry_delay=5.0, min_idle=60.0):
        await redis_client.xadd(STREAM, entry(id="e1"))
        await watch.until(lambda: bool(watch.logged("eventbus.redis.retry")))

    assert await consumers_of(redis_client) == {"c1": 1}
    assert watch.logged("eventbus.redis.left_pending", consumer="c1")


async def test_stale_consumers_with_nothing_pending_are_removed_when_a_consumer_starts(
    bus: EventBus, redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    await redis_client.xgroup_createconsumer(STREAM, "g", "gone")
    await redis_client.xadd(STREAM, entry(id="e1"))
    await redis_client.xreadgroup("g", "crashed", {STREAM: ">"})  # one entry pending there
    min_idle = 0.05
    while min((await consumers_of_idle(redis_client)).values()) <= 2 * min_idle * 1000:
        await asyncio.sleep(0.05)  # the condition is the server's clock itself

    async with consumer(bus, redis_client, consumer="c1", min_idle=min_idle, retry_delay=0.01):
        names = set(await consumers_of(redis_client))

    assert "gone" not in names
    assert "crashed" in names  # its entry would be lost with its name: claimed instead
    assert watch.logged("eventbus.redis.stale_consumers_removed", names=["gone"])


async def consumers_of_idle(client: Redis) -> dict[str, int]:
    infos: Any = await client.xinfo_consumers(STREAM, "g")
    return {info["name"].decode(): int(info["idle"]) for info in infos}


@pytest.mark.parametrize("run", range(5))
async def test_stop_under_traffic_leaves_nothing_pending_at_the_consumer(
    redis_client: Redis, watch: Watch, run: int
) -> None:
    web, worker = EventBus("web"), EventBus("worker")
    handled: list[str] = []
    worker.on("order.placed", lambda event: handled.append(event.id))
    stop_producing = asyncio.Event()
    sent: list[str] = []
    async with RedisBridge(web, redis_client, stream=STREAM, forward="order.*", batch=10):
        bridge = consumer(worker, redis_client, consumer="c1", batch=10)
        async with bridge:
            producing = asyncio.ensure_future(produce(web, stop_producing, sent))
            await watch.until(lambda: len(handled) >= 50 + 7 * run)
        # stopped under traffic: the producer still runs
        assert not producing.done()
        stop_producing.set()
        await producing

    assert await pending_entries(redis_client) == []
    assert "c1" not in await consumers_of(redis_client)
    assert set(handled) <= set(sent)


async def test_the_fastapi_recipe_shuts_down_with_nothing_pending_and_no_consumer_left(
    redis_client: Redis, watch: Watch
) -> None:
    bus = EventBus("web")
    handled: list[Event] = []
    bus.on("order.placed", handled.append)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with RedisBridge(bus, redis_client, stream=STREAM, group="web", block=0.05):
            yield

    app = FastAPI(lifespan=lifespan)
    attach(app, bus)
    other = EventBus("other")
    stop_producing = asyncio.Event()
    sent: list[str] = []
    async with RedisBridge(other, redis_client, stream=STREAM, forward="order.*", batch=10):
        async with app.router.lifespan_context(app):
            producing = asyncio.ensure_future(produce(other, stop_producing, sent))
            await watch.until(lambda: len(handled) >= 50)
        stop_producing.set()
        await producing

    assert await pending_entries(redis_client, group="web") == []
    assert await consumers_of(redis_client, "web") == {}


async def test_an_entry_read_while_the_consumer_stops_is_handled_and_acked_before_it_leaves(
    bus: EventBus, redis_client: Redis, watch: Watch
) -> None:
    bus.on("order.placed", watch.record)
    bridge = consumer(bus, redis_client, consumer="c1", block=30.0)
    await bridge.start()
    while not await blocked_in_read(redis_client):
        await asyncio.sleep(0.01)  # the condition is the server's view of the connection
    stopping = asyncio.ensure_future(bridge.stop())
    await asyncio.sleep(0)  # stop() has begun: reading is over, the read in progress is not
    await redis_client.xadd(STREAM, entry(id="late"))
    await asyncio.wait_for(stopping, 60)

    assert [event.id for event in watch.handled] == ["late"]
    assert await pending_entries(redis_client) == []
    assert await consumers_of(redis_client) == {}


async def blocked_in_read(client: Redis) -> bool:
    clients: Any = await client.client_list()
    return any(str(info.get("cmd", "")).lower() == "xreadgroup" for info in clients)
