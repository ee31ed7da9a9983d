"""RedisBridge, inbound: what a consumer bridge emits on its bus, for which group, and what it
refuses (dead-lettered at once) — against a real redis-server.

Tests never sleep to wait: they wait for a handler call or a log entry (``Watch``), with a
60-second guard (``WAIT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from bridge_helpers import (
    DEAD,
    STREAM,
    WAIT,
    Watch,
    consumer,
    create_group,
    entry,
    ids,
    pending,
    stream_entries,
    until_nothing_pending,
)
from redis.asyncio import Redis

from eventbus import Event, EventBus, ReentrancyError
from eventbus.redis import RedisBridge

# ---------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def producer(
    client: Redis, forward: str = "*"
) -> AsyncIterator[tuple[EventBus, RedisBridge]]:
    """Bus "a" in another process, as far as the stream can tell: it only forwards."""
    bus = EventBus("a")
    async with RedisBridge(bus, client, stream=STREAM, forward=forward) as bridge:
        yield bus, bridge


async def assert_dead_lettered_at_once(
    client: Redis, watch: Watch, bridge: RedisBridge, error_type: str
) -> dict[str, str]:
    """Wait for the one dead-lettered entry; check it was refused on its first delivery."""
    await watch.until(lambda: watch.dead_lettered() == 1)
    [dead] = await stream_entries(client, DEAD)
    assert dead["deliveries"] == "1"
    [error] = json.loads(dead["errors"])
    assert error["handler"] is None
    assert error["type"] == error_type
    assert error["message"]
    await until_nothing_pending(client)
    stats = await bridge.stats()
    assert stats.dead_lettered == 1
    assert stats.retried == 0
    return dead


# ---------------------------------------------------------------- what arrives


async def test_forwarded_event_arrives_unchanged(redis_client: Redis, watch: Watch) -> None:
    """A forwarded event arrives with the same id, parent, source, depth, timestamp and payload."""
    payload = {
        "lines": [{"sku": "café-crème", "qty": 2, "price": 3.5}, {"sku": "日本茶", "qty": 1}],
        "customer": {"name": "Zoë", "tags": ["vip", "ünïcode"], "vat": None, "member": True},
        "total": 10,
    }
    sent: list[Event] = []
    await create_group(redis_client)
    bus_b = EventBus("b")
    bus_b.on("order.placed", watch.record)
    async with (
        producer(redis_client, forward="order.placed") as (bus_a, forwarder),
        consumer(bus_b, redis_client),
    ):

        async def check_out(event: Event) -> None:
            report = await bus_a.emit("order.placed", source="shop", **payload)
            sent.append(report.event)

        bus_a.on("cart.checked_out", check_out)
        await bus_a.emit("cart.checked_out", source="shop")
        await forwarder.flush()
        await watch.until(lambda: len(watch.handled) == 1)

    [original] = sent
    [received] = watch.handled
    assert received.name == original.name == "order.placed"
    assert received.id == original.id
    assert received.parent_id == original.parent_id is not None
    assert received.source == original.source == "shop"
    assert received.depth == original.depth == 1
    assert received.timestamp == original.timestamp
    assert dict(received.payload) == dict(original.payload) == payload


async def test_received_event_runs_the_handlers_in_priority_order(
    redis_client: Redis, watch: Watch
) -> None:
    order: list[str] = []
    await create_group(redis_client)
    bus_b = EventBus("b")
    bus_b.on("order.placed", lambda event: order.append("low"), priority=-5)
    bus_b.on("order.placed", lambda event: order.append("middle"))
    bus_b.on("order.placed", lambda event: order.append("high"), priority=10)
    bus_b.on("order.placed", watch.record, priority=-10)
    async with producer(redis_client) as (bus_a, forwarder), consumer(bus_b, redis_client):
        await bus_a.emit("order.placed", total=12)
        await forwarder.flush()
        await watch.until(lambda: len(watch.handled) == 1)

    assert order == ["high", "middle", "low"]


async def test_emitted_log_on_the_receiving_bus_shows_the_original_event_id(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus_b = EventBus("b")
    bus_b.on("order.placed", watch.record)
    async with producer(redis_client) as (bus_a, forwarder), consumer(bus_b, redis_client):
        report = await bus_a.emit("order.placed", source="shop", total=12)
        await forwarder.flush()
        await watch.until(lambda: len(watch.logged("eventbus.emitted", bus="b")) == 1)

    [emitted] = watch.logged("eventbus.emitted", bus="b")
    assert emitted["event_id"] == report.event.id
    assert emitted["event_name"] == "order.placed"
    assert emitted["source"] == "shop"
    assert emitted["handlers"] == 1
    assert emitted["failed"] == 0


# ---------------------------------------------------------------- groups and consumers


async def test_two_groups_on_one_stream_each_get_every_entry(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client, "billing")
    await create_group(redis_client, "shipping")
    billing, shipping = EventBus("billing"), EventBus("shipping")
    seen: dict[str, list[str]] = {"billing": [], "shipping": []}

    def recorder(group: str) -> Callable[[Event], None]:
        def record(event: Event) -> None:
            seen[group].append(event.id)
            watch.changed()

        return record

    billing.on("order.placed", recorder("billing"))
    shipping.on("order.placed", recorder("shipping"))
    async with (
        producer(redis_client) as (bus_a, forwarder),
        consumer(billing, redis_client, group="billing"),
        consumer(shipping, redis_client, group="shipping"),
    ):
        sent = [(await bus_a.emit("order.placed", number=n)).event.id for n in range(3)]
        await forwarder.flush()
        await watch.until(lambda: len(seen["billing"]) == len(seen["shipping"]) == 3)
        await watch.until(lambda: watch.acked("billing") == watch.acked("shipping") == 3)

    assert seen == {"billing": sent, "shipping": sent}


async def test_two_consumers_in_one_group_split_the_entries_and_each_is_handled_once(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    buses = {"c1": EventBus("b1"), "c2": EventBus("b2")}
    seen: dict[str, list[str]] = {"c1": [], "c2": []}
    first: list[str] = []
    other_consumer_busy = asyncio.Event()

    def subscribe(name: str) -> None:
        async def handle(event: Event) -> None:
            seen[name].append(event.id)
            watch.changed()
            if not first:
                # Hold this entry until the other consumer has handled one: both take part.
                first.append(name)
                await asyncio.wait_for(other_consumer_busy.wait(), WAIT)
            elif name != first[0]:
                other_consumer_busy.set()

        buses[name].on("order.placed", handle)

    subscribe("c1")
    subscribe("c2")
    async with (
        producer(redis_client) as (bus_a, forwarder),
        consumer(buses["c1"], redis_client, consumer="c1", batch=1),
        consumer(buses["c2"], redis_client, consumer="c2", batch=1),
    ):
        sent = [(await bus_a.emit("order.placed", number=n)).event.id for n in range(6)]
        await forwarder.flush()
        await watch.until(lambda: watch.acked() == 6)
        assert await pending(redis_client) == 0

    assert seen["c1"]
    assert seen["c2"]
    assert sorted(seen["c1"] + seen["c2"]) == sorted(sent)


# ---------------------------------------------------------------- echoes


async def test_entry_whose_origin_is_the_consumers_group_is_acked_without_dispatch(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client) as bridge:
        await redis_client.xadd(STREAM, entry(id="mine", origin="g"))
        await redis_client.xadd(STREAM, entry(id="theirs", origin="other"))
        await watch.until(lambda: watch.acked() == 2)
        stats = await bridge.stats()

    assert ids(watch.handled) == ["theirs"]
    assert stats.echoes == 1
    assert stats.consumed == 1
    assert stats.acked == 2
    assert stats.pending == 0


async def test_forwarding_consumer_never_dispatches_its_own_emission_twice(
    redis_client: Redis, watch: Watch
) -> None:
    """A bridge that forwards and consumes never dispatches its own emission twice."""
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, forward="order.placed") as bridge:
        await bus.emit("order.placed", total=12)
        await bridge.flush()
        await watch.until(lambda: watch.acked() == 1)
        stats = await bridge.stats()

    assert len(watch.handled) == 1
    assert stats.forwarded == 1
    assert stats.echoes == 1
    assert stats.consumed == 0
    assert stats.pending == 0
    [sent] = await stream_entries(redis_client)
    assert sent["origin"] == "g"


async def test_bridge_of_another_group_receives_the_emissions_of_a_group(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client, "g")
    await create_group(redis_client, "h")
    bus_g, bus_h = EventBus("g"), EventBus("h")
    runs_on_g: list[str] = []
    bus_g.on("order.placed", lambda event: runs_on_g.append(event.id))
    bus_h.on("order.placed", watch.record)
    async with (
        consumer(bus_g, redis_client, group="g", forward="order.placed") as bridge_g,
        consumer(bus_h, redis_client, group="h"),
    ):
        report = await bus_g.emit("order.placed", total=12)
        await bridge_g.flush()
        await watch.until(lambda: len(watch.handled) == 1)
        await watch.until(lambda: watch.acked("g") == 1)  # g's own copy: an echo

    assert ids(watch.handled) == [report.event.id]
    assert runs_on_g == [report.event.id]


# ---------------------------------------------------------------- refused: dead-lettered at once


async def test_undeclared_name_on_a_strict_bus_is_dead_lettered_at_once(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b", strict=True)
    bus.declare("order.placed")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client) as bridge:
        await redis_client.xadd(STREAM, entry("order.plaaced"))
        dead = await assert_dead_lettered_at_once(redis_client, watch, bridge, "UnknownEventError")

    assert dead["name"] == "order.plaaced"
    assert "order.placed" in json.loads(dead["errors"])[0]["message"]  # did you mean
    assert watch.handled == []


async def test_payload_of_the_wrong_declared_type_is_dead_lettered_at_once(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.declare("order.placed", payload={"total": int})
    bus.on("order.placed", watch.record)
    async with producer(redis_client) as (bus_a, forwarder), consumer(bus, redis_client) as bridge:
        await bus_a.emit("order.placed", total="twelve")
        await forwarder.flush()
        dead = await assert_dead_lettered_at_once(redis_client, watch, bridge, "PayloadError")

    assert "total" in json.loads(dead["errors"])[0]["message"]
    assert watch.handled == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({k: v for k, v in entry().items() if k != "id"}, id="missing-id"),
        pytest.param(entry(payload='{"total": 12'), id="bad-json"),
        pytest.param(entry(payload="[1, 2]"), id="payload-not-an-object"),
        pytest.param(entry(v="2"), id="unknown-version"),
        pytest.param({"hello": "world"}, id="not-an-event"),
    ],
)
async def test_malformed_entry_is_dead_lettered_at_once(
    redis_client: Redis, watch: Watch, fields: dict[str, str]
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("*", watch.record)
    async with consumer(bus, redis_client) as bridge:
        entry_id = (await redis_client.xadd(STREAM, fields)).decode()
        dead = await assert_dead_lettered_at_once(redis_client, watch, bridge, "BadEntry")

    assert dead["entry_id"] == entry_id
    assert {key: dead[key] for key in fields} == fields  # the original fields, kept as they were
    assert watch.handled == []


async def test_entry_whose_chain_already_holds_its_name_is_refused_as_a_loop(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("stock.changed", watch.record)
    async with consumer(bus, redis_client) as bridge:
        await redis_client.xadd(
            STREAM,
            entry(
                "stock.changed",
                depth="2",
                parent="remote-0",
                chain="stock.changed order.placed",
            ),
        )
        dead = await assert_dead_lettered_at_once(redis_client, watch, bridge, "ReentrancyError")

    message = json.loads(dead["errors"])[0]["message"]
    assert "stock.changed -> order.placed -> stock.changed" in message
    assert watch.handled == []


async def test_entry_deeper_than_max_depth_is_dead_lettered_and_one_at_max_depth_runs(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b", max_depth=3)
    bus.on("deep", watch.record)
    async with consumer(bus, redis_client) as bridge:
        await redis_client.xadd(
            STREAM, entry("deep", id="too-deep", depth="4", parent="p", chain="s0 s1 s2 s3")
        )
        await redis_client.xadd(
            STREAM, entry("deep", id="deep-enough", depth="3", parent="p", chain="s0 s1 s2")
        )
        # The one that runs is acknowledged (not only handled) before anything is checked.
        await watch.until(lambda: len(watch.handled) == 1 and watch.acked() == 1)
        await assert_dead_lettered_at_once(redis_client, watch, bridge, "ReentrancyError")

    [dead] = await stream_entries(redis_client, DEAD)
    assert dead["id"] == "too-deep"
    assert ids(watch.handled) == ["deep-enough"]


async def test_loop_through_two_processes_is_refused_where_it_closes(
    redis_client: Redis, watch: Watch
) -> None:
    # Process A: a handler of `a` emits `b`, forwarded. Process B: a handler of `b` emits `a`,
    # forwarded back to A, which would emit `b` again... B's emission of `a` is refused.
    await create_group(redis_client)
    refused: list[ReentrancyError] = []
    bus_b = EventBus("b")

    async def answer(event: Event) -> None:
        try:
            await bus_b.emit("a")
        except ReentrancyError as error:
            refused.append(error)
        watch.changed()

    bus_b.on("b", answer)
    async with (
        producer(redis_client, forward="b") as (bus_a, forwarder),
        consumer(bus_b, redis_client, forward="a") as bridge_b,
    ):

        async def cause(event: Event) -> None:
            await bus_a.emit("b")

        bus_a.on("a", cause)
        await bus_a.emit("a")
        await forwarder.flush()
        await watch.until(lambda: bool(refused))
        await watch.until(lambda: watch.acked() == 1)
        await bridge_b.flush()

    [error] = refused
    assert error.chain == ("a", "b", "a")
    assert [fields["name"] for fields in await stream_entries(redis_client)] == ["b"]


# ---------------------------------------------------------------- nested emissions


async def test_nested_emission_of_a_received_event_keeps_parent_and_chain(
    redis_client: Redis, watch: Watch
) -> None:
    """A nested emission of a received event has it as parent and travels with the chain."""
    await create_group(redis_client)
    bus_b = EventBus("b")
    received: list[Event] = []
    confirmed: list[Event] = []

    async def confirm(event: Event) -> None:
        received.append(event)
        confirmed.append((await bus_b.emit("order.confirmed", number=event["number"])).event)
        watch.changed()

    bus_b.on("order.placed", confirm)
    async with (
        producer(redis_client, forward="order.placed") as (bus_a, forwarder),
        consumer(bus_b, redis_client, forward="order.confirmed") as bridge_b,
    ):

        async def check_out(event: Event) -> None:
            await bus_a.emit("order.placed", number=7)

        bus_a.on("cart.checked_out", check_out)
        await bus_a.emit("cart.checked_out")
        await forwarder.flush()
        await watch.until(lambda: bool(confirmed))
        await bridge_b.flush()

    [placed] = received
    [nested] = confirmed
    assert nested.parent_id == placed.id
    assert nested.depth == placed.depth + 1 == 2
    by_name = {fields["name"]: fields for fields in await stream_entries(redis_client)}
    assert by_name["order.placed"]["chain"] == "cart.checked_out"
    forwarded = by_name["order.confirmed"]
    assert forwarded["id"] == nested.id
    assert forwarded["parent"] == placed.id
    assert forwarded["depth"] == "2"
    assert forwarded["chain"] == "cart.checked_out order.placed"
    assert forwarded["origin"] == "g"


# ---------------------------------------------------------------- where a new group starts


@contextlib.asynccontextmanager
async def group_creations(client: Redis) -> AsyncIterator[Callable[[], Any]]:
    """Redis's keyspace notifications for the stream: wait for the next "xgroup-create"."""
    await client.config_set("notify-keyspace-events", "Kt")
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(f"__keyspace@0__:{STREAM}")

        async def next_creation() -> None:
            async with asyncio.timeout(WAIT):
                async for message in pubsub.listen():
                    if message["type"] == "message" and message["data"] == b"xgroup-create":
                        return

        yield next_creation
    finally:
        await pubsub.aclose()
        await client.config_set("notify-keyspace-events", "")


async def test_new_group_starting_at_0_reads_the_entries_added_before_it_existed(
    redis_client: Redis, watch: Watch
) -> None:
    await redis_client.xadd(STREAM, entry(id="old-1"))
    await redis_client.xadd(STREAM, entry(id="old-2"))
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, start_at="0"):
        await watch.until(lambda: watch.acked() == 2)

    assert ids(watch.handled) == ["old-1", "old-2"]


async def test_new_group_skips_earlier_entries_by_default(
    redis_client: Redis, watch: Watch
) -> None:
    """A new group starts at "$" by default: it skips the entries added before it existed."""
    await redis_client.xadd(STREAM, entry(id="old-1"))
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with group_creations(redis_client) as group_created, consumer(bus, redis_client):
        await group_created()
        await redis_client.xadd(STREAM, entry(id="new-1"))
        await watch.until(lambda: watch.acked() == 1)

    assert ids(watch.handled) == ["new-1"]
