"""Trimming (``maxlen``) never drops entries a group has not read silently: the writer
notices, logs ``eventbus.redis.trimmed_unread`` and counts them in ``trimmed_unread``."""

from __future__ import annotations

import pytest
from bridge_helpers import WAIT, Watch
from redis.asyncio import Redis

from eventbus import EventBus
from eventbus.redis import RedisBridge, _trimming

STREAM = "eventbus"


@pytest.fixture(autouse=True)
def check_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer looks at the groups with every batch, not once a second."""
    monkeypatch.setattr(_trimming, "CHECK_EVERY", 0.0)


async def needs_redis_7(client: Redis) -> None:
    info = await client.info("server")
    if int(str(info["redis_version"]).split(".")[0]) < 7:
        pytest.skip("Redis 6.2 does not count entries read per group (entries-read)")


async def forward(bus: EventBus, bridge: RedisBridge, count: int) -> None:
    for n in range(count):
        await bus.emit("order.placed", n=n)
        if n % 50 == 49:
            await bridge.flush(timeout=WAIT)  # one batch at a time: one look each
    await bridge.flush(timeout=WAIT)


async def test_entries_trimmed_before_a_group_read_them_are_counted_and_logged(
    redis_client: Redis, watch: Watch
) -> None:
    await needs_redis_7(redis_client)
    await redis_client.xgroup_create(STREAM, "slow", id="$", mkstream=True)
    bus = EventBus("shop")
    async with RedisBridge(bus, redis_client, forward="order.*", maxlen=10) as bridge:
        await forward(bus, bridge, 400)
        await bus.emit("order.placed", n=400)  # one more look, after the last trim
        await bridge.flush(timeout=WAIT)
        stats = await bridge.stats()

    trimmed = 401 - await redis_client.xlen(STREAM)
    assert trimmed > 0
    assert stats.trimmed_unread == trimmed
    logged = watch.logged("eventbus.redis.trimmed_unread", lagging_group="slow")
    assert sum(entry["count"] for entry in logged) == trimmed
    assert logged[-1]["total"] == trimmed


async def test_a_group_that_read_everything_is_not_reported(
    redis_client: Redis, watch: Watch
) -> None:
    await needs_redis_7(redis_client)
    bus = EventBus("shop")
    async with RedisBridge(bus, redis_client, forward="order.*", maxlen=10) as bridge:
        await forward(bus, bridge, 200)
        await redis_client.xgroup_create(STREAM, "late", id="$")  # created after the trims
        await forward(bus, bridge, 1)
        stats = await bridge.stats()

    assert stats.trimmed_unread == 0
    assert watch.logged("eventbus.redis.trimmed_unread") == []


async def test_without_maxlen_the_writer_never_looks(redis_client: Redis, watch: Watch) -> None:
    await redis_client.xgroup_create(STREAM, "slow", id="$", mkstream=True)
    bus = EventBus("shop")
    async with RedisBridge(bus, redis_client, forward="order.*", maxlen=None) as bridge:
        await forward(bus, bridge, 200)

    assert await redis_client.xlen(STREAM) == 200
    assert watch.logged("eventbus.redis.trimmed_unread") == []
