"""A bridge holds on to nothing once it is done with it: not itself through the bus's
tap, not the entries it consumed."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import weakref

from bridge_helpers import STREAM, WAIT, create_group, pending
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge

GROWTH_BOUND = 256 * 1024
"""Traced bytes 5,000 more entries may add: fixed caches, not ~50 bytes per entry."""


async def test_a_stopped_bridge_is_not_kept_alive_by_its_bus(redis_client: Redis) -> None:
    bus = EventBus("b")
    bridge = RedisBridge(bus, redis_client, stream=STREAM, group="g", forward=["order.*"])
    async with bridge:
        await bus.emit("order.placed", total=1)
        await bridge.flush()
    collected = weakref.ref(bridge)
    del bridge
    gc.collect()

    assert collected() is None
    assert (await bus.emit("order.placed", total=2)).ok  # and the bus works without it


async def test_consuming_thousands_of_entries_keeps_memory_flat(redis_client: Redis) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    handled = 0
    enough = asyncio.Event()
    target = 0

    def count(event: Event) -> None:
        nonlocal handled
        handled += 1
        if handled == target:
            enough.set()

    bus.on("order.placed", count)

    async def consume(entries: int) -> None:
        nonlocal target
        enough.clear()
        target = handled + entries
        async with redis_client.pipeline(transaction=False) as pipe:
            for index in range(entries):
                pipe.xadd(
                    STREAM,
                    {
                        "v": "1",
                        "name": "order.placed",
                        "id": f"e{target}-{index}",
                        "ts": "1.0",
                        "payload": '{"total": 1}',
                    },
                )
            await pipe.execute()
        await asyncio.wait_for(enough.wait(), WAIT)

    async with RedisBridge(bus, redis_client, stream=STREAM, group="g", block=0.05):
        await consume(1000)  # warm-up: caches, buffers, the route
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await consume(5000)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    assert handled == 6000
    assert await pending(redis_client) == 0
    assert after - before < GROWTH_BOUND, f"grew by {after - before} bytes"
