"""RedisBridge with typed events (``Topic[T]``): the payload travels as fields, and the
receiving process rebuilds ``event.data`` from its own declaration of the name; a payload
that does not fit that declaration is dead-lettered at once, saying why.

Tests never sleep to wait: they wait for a handler call or a log entry (``Watch``), with a
60-second guard (``WAIT``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bridge_helpers import DEAD, STREAM, Watch, consumer, create_group, flush, stream_entries
from redis.asyncio import Redis

from eventbus import EventBus, Topic
from eventbus.redis import RedisBridge


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    total_cents: int


@dataclass(frozen=True)
class OrderPlacedV2:
    order_id: str
    total_cents: int
    currency: str


ORDER_PLACED = Topic("order.placed", OrderPlaced)


@contextlib.asynccontextmanager
async def producer(client: Redis) -> AsyncIterator[tuple[EventBus, RedisBridge]]:
    """Bus "a" in another process, as far as the stream can tell: it only forwards."""
    bus = EventBus("a")
    async with RedisBridge(bus, client, stream=STREAM, forward="*") as bridge:
        yield bus, bridge


async def test_received_typed_event_has_its_data_rebuilt(redis_client: Redis, watch: Watch) -> None:
    """The consumer's handler gets an OrderPlaced built from its own declaration."""
    await create_group(redis_client)
    bus = EventBus("b")
    bus.declare(ORDER_PLACED)
    bus.on(ORDER_PLACED, watch.record)
    async with producer(redis_client) as (bus_a, forwarder), consumer(bus, redis_client):
        sent = await bus_a.emit(ORDER_PLACED, OrderPlaced("O-1", 1200))
        await flush(forwarder)
        await watch.until(lambda: len(watch.handled) == 1)

    [received] = watch.handled
    assert received.data == OrderPlaced("O-1", 1200)
    assert received.id == sent.event.id


async def test_undeclared_typed_event_arrives_with_its_payload(
    redis_client: Redis, watch: Watch
) -> None:
    """Without a declaration the receiver has nothing to build: data is the payload mapping."""
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with producer(redis_client) as (bus_a, forwarder), consumer(bus, redis_client):
        await bus_a.emit(ORDER_PLACED, order_id="O-1", total_cents=1200)
        await flush(forwarder)
        await watch.until(lambda: len(watch.handled) == 1)

    assert dict(watch.handled[0].data) == {"order_id": "O-1", "total_cents": 1200}


async def test_payload_that_does_not_fit_the_declaration_is_dead_lettered_at_once(
    redis_client: Redis, watch: Watch
) -> None:
    """The receiver declares another version of the data: the entry is dead-lettered with a
    PayloadError naming the missing field, and no handler runs."""
    await create_group(redis_client)
    bus = EventBus("b")
    bus.declare(Topic("order.placed", OrderPlacedV2))
    bus.on("order.placed", watch.record)
    async with (
        producer(redis_client) as (bus_a, forwarder),
        consumer(bus, redis_client) as bridge,
    ):
        await bus_a.emit(ORDER_PLACED, OrderPlaced("O-1", 1200))
        await flush(forwarder)
        await watch.until(lambda: watch.dead_lettered() == 1)
        stats = await bridge.stats()

    [dead] = await stream_entries(redis_client, DEAD)
    [error] = json.loads(dead["errors"])
    assert error["type"] == "PayloadError"
    assert error["message"] == "event 'order.placed' (OrderPlacedV2): field 'currency' is missing"
    assert dead["deliveries"] == "1"
    assert stats.dead_lettered == 1
    assert watch.handled == []
