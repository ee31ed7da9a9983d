"""Outbound: local emissions matching ``forward`` are appended to the Redis stream
(REDIS_DESIGN.md, "Outbound"), and a payload JSON cannot carry exactly is refused
before anything runs."""

from __future__ import annotations

import asyncio
import datetime
import enum
import json
import math
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from bridge_helpers import WAIT, flush, stream_entries
from redis.asyncio import Redis

from eventbus import Event, EventBus, EventBusError, PayloadError
from eventbus.redis import RedisBridge
from eventbus.redis._entries import encode


async def read_stream(client: Redis, stream: str = "eventbus") -> list[dict[str, str]]:
    """Every entry of ``stream`` (the bridge's default one unless told), oldest first."""
    return await stream_entries(client, stream)


async def names_in(client: Redis, stream: str = "eventbus") -> list[str]:
    return [fields["name"] for fields in await read_stream(client, stream)]


@pytest.fixture
async def unreachable_client() -> AsyncIterator[Redis]:
    """A client for a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    yield client
    await client.aclose()


# ---------------------------------------------------------------- entry fields


async def test_a_forwarded_emission_is_appended_with_the_fields_of_its_event(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        report = await bus.emit(
            "order.placed", source="shop", total=12, lines=[{"sku": "A1", "price": 9.5}]
        )
        await flush(bridge)

    event = report.event
    assert await read_stream(redis_client) == [
        {
            "v": "1",
            "name": "order.placed",
            "id": event.id,
            "ts": repr(event.timestamp),
            "payload": '{"total":12,"lines":[{"sku":"A1","price":9.5}]}',
            "source": "shop",
        }
    ]


async def test_the_payload_field_is_json_that_gives_back_the_payload(
    bus: EventBus, redis_client: Redis
) -> None:
    payload = {"client": "Zoë 🎉", "lines": [{"qty": 2, "price": 0.1}], "paid": True, "note": None}

    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        await bus.emit("order.placed", **payload)
        await flush(bridge)

    (entry,) = await read_stream(redis_client)
    assert json.loads(entry["payload"]) == payload


async def test_source_parent_and_a_zero_depth_are_left_out_when_not_set(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        await bus.emit("order.placed", total=1)
        await flush(bridge)

    (entry,) = await read_stream(redis_client)
    assert set(entry) == {"v", "name", "id", "ts", "payload"}


async def test_a_nested_emission_carries_its_parent_depth_and_the_chain_of_ancestors(
    bus: EventBus, redis_client: Redis
) -> None:
    events: dict[str, Event] = {}

    @bus.on("order.placed")
    async def reserve(event: Event) -> None:
        events[event.name] = event
        await bus.emit("stock.reserved", sku="A1")

    @bus.on("stock.reserved")
    async def restock(event: Event) -> None:
        events[event.name] = event
        events["stock.low"] = (await bus.emit("stock.low", sku="A1")).event

    async with RedisBridge(bus, redis_client, forward=["order.placed", "stock.*"]) as bridge:
        await bus.emit("order.placed")
        await flush(bridge)

    placed, reserved, low = await read_stream(redis_client)
    assert "chain" not in placed
    assert "parent" not in placed
    assert reserved["parent"] == events["order.placed"].id
    assert reserved["depth"] == "1"
    assert reserved["chain"] == "order.placed"
    assert low["parent"] == events["stock.reserved"].id
    assert low["depth"] == "2"
    assert low["chain"] == "order.placed stock.reserved"


async def test_a_nested_published_emission_carries_its_parent_and_chain(
    bus: EventBus, redis_client: Redis
) -> None:
    published: list[asyncio.Task[Any]] = []

    @bus.on("order.placed")
    async def notify(event: Event) -> None:
        published.append(bus.publish("mail.queued"))

    async with RedisBridge(bus, redis_client, forward=["mail.queued"]) as bridge:
        report = await bus.emit("order.placed")
        await asyncio.wait_for(bus.drain(), WAIT)
        await flush(bridge)

    (mail,) = await read_stream(redis_client)
    assert mail["parent"] == report.event.id
    assert mail["depth"] == "1"
    assert mail["chain"] == "order.placed"


async def test_the_chain_names_ancestors_that_are_not_forwarded(
    bus: EventBus, redis_client: Redis
) -> None:
    @bus.on("order.placed")
    async def reserve(event: Event) -> None:
        await bus.emit("stock.reserved")

    @bus.on("stock.reserved")
    async def restock(event: Event) -> None:
        await bus.emit("stock.low")

    async with RedisBridge(bus, redis_client, forward=["stock.low"]) as bridge:
        await bus.emit("order.placed")
        await flush(bridge)

    (low,) = await read_stream(redis_client)
    assert low["chain"] == "order.placed stock.reserved"
    assert low["depth"] == "2"


async def test_origin_is_the_group_of_the_bridge_that_sent_it(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(
        bus, redis_client, group="billing", consumer="c1", forward=["order.placed"]
    ) as bridge:
        await bus.emit("order.placed")
        await flush(bridge)

    (entry,) = await read_stream(redis_client)
    assert entry["origin"] == "billing"


async def test_a_bridge_without_group_sends_no_origin(bus: EventBus, redis_client: Redis) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        await bus.emit("order.placed")
        await flush(bridge)

    (entry,) = await read_stream(redis_client)
    assert "origin" not in entry


async def test_entries_go_to_the_configured_stream(bus: EventBus, redis_client: Redis) -> None:
    async with RedisBridge(bus, redis_client, stream="shop:events", forward="order.*") as bridge:
        await bus.emit("order.placed")
        await flush(bridge)

    assert await names_in(redis_client, "shop:events") == ["order.placed"]
    assert await redis_client.exists("eventbus") == 0


# ---------------------------------------------------------------- what is forwarded


async def test_an_emission_whose_name_matches_no_forward_pattern_is_not_sent(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        await bus.emit("order.cancelled")
        await bus.emit("invoice.paid")
        await bus.emit("order.placed")
        await flush(bridge)

    assert await names_in(redis_client) == ["order.placed"]


async def test_each_of_several_forward_patterns_is_honoured(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.*", "invoice.paid"]) as bridge:
        for name in (
            "order.placed",
            "order.line.added",
            "order",
            "invoice.paid",
            "invoice.sent",
            "orders.x",
        ):
            await bus.emit(name)
        await flush(bridge)

    assert await names_in(redis_client) == ["order.placed", "order.line.added", "invoice.paid"]


async def test_forward_may_be_a_single_pattern_given_as_a_str(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward="order.*") as bridge:
        assert bridge.forward == ("order.*",)
        await bus.emit("order.placed")
        await bus.emit("invoice.paid")
        await flush(bridge)

    assert await names_in(redis_client) == ["order.placed"]


async def test_forward_star_sends_every_emission(bus: EventBus, redis_client: Redis) -> None:
    async with RedisBridge(bus, redis_client, forward="*") as bridge:
        await bus.emit("a")
        await bus.emit("b.c.d")
        await flush(bridge)

    assert await names_in(redis_client) == ["a", "b.c.d"]


async def test_entries_are_in_emission_order_across_batches(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["tick"], batch=7) as bridge:
        ids = [(await bus.emit("tick", n=n)).event.id for n in range(250)]
        await flush(bridge)

    entries = await read_stream(redis_client)
    assert [entry["id"] for entry in entries] == ids
    assert [json.loads(entry["payload"])["n"] for entry in entries] == list(range(250))


async def test_an_emission_with_handlers_is_forwarded_as_one_without(
    bus: EventBus, redis_client: Redis
) -> None:
    seen: list[str] = []
    bus.on("order.placed", lambda event: seen.append(event.id))

    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        report = await bus.emit("order.placed", total=3)
        await flush(bridge)

    assert seen == [report.event.id]
    assert [entry["id"] for entry in await read_stream(redis_client)] == [report.event.id]


# ---------------------------------------------------------------- emit_sync and publish


async def test_emit_sync_in_the_loop_thread_with_sync_handlers_is_forwarded(
    bus: EventBus, redis_client: Redis
) -> None:
    handled: list[Event] = []
    bus.on("order.placed", handled.append)

    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        report = bus.emit_sync("order.placed", total=5)
        await flush(bridge)

    assert handled == [report.event]
    (entry,) = await read_stream(redis_client)
    assert entry["id"] == report.event.id
    assert json.loads(entry["payload"]) == {"total": 5}


@pytest.mark.usefixtures("fast_thread_switching")
async def test_emit_sync_from_threads_forwards_all_in_order(
    bus: EventBus, redis_client: Redis
) -> None:
    """emit_sync from other threads at once forwards every emission in each thread's order."""
    threads_count, per_thread = 4, 200
    start = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def emitter(thread: int) -> None:
        try:
            start.wait(WAIT)
            for n in range(per_thread):
                bus.emit_sync("tick", thread=thread, n=n)
        except BaseException as error:
            failures.append(error)

    async with RedisBridge(bus, redis_client, forward=["tick"], batch=16) as bridge:
        threads = [threading.Thread(target=emitter, args=(t,)) for t in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join, WAIT)
        assert not any(thread.is_alive() for thread in threads)
        assert failures == []
        await flush(bridge)

    payloads = [json.loads(entry["payload"]) for entry in await read_stream(redis_client)]
    assert len(payloads) == threads_count * per_thread
    for thread in range(threads_count):
        assert [p["n"] for p in payloads if p["thread"] == thread] == list(range(per_thread))


async def test_emit_sync_from_another_thread_wakes_an_idle_writer(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["tick"]) as bridge:
        await bus.emit("tick", n=0)
        await flush(bridge)  # the writer is now waiting for work
        thread = threading.Thread(target=bus.emit_sync, args=("tick",), kwargs={"n": 1})
        thread.start()
        await asyncio.to_thread(thread.join, WAIT)
        assert not thread.is_alive()
        await flush(bridge)

    assert [json.loads(e["payload"])["n"] for e in await read_stream(redis_client)] == [0, 1]


# ---------------------------------------------------------------- trimming


async def test_maxlen_trims_the_stream_approximately(bus: EventBus, redis_client: Redis) -> None:
    async with RedisBridge(bus, redis_client, forward=["tick"], maxlen=10) as bridge:
        for n in range(1000):
            bus.emit_sync("tick", n=n)
        await flush(bridge)

    length = await redis_client.xlen("eventbus")
    assert 10 <= length <= 300
    ((_, last),) = await redis_client.xrevrange("eventbus", count=1)
    assert json.loads(last[b"payload"]) == {"n": 999}  # trimming drops the oldest


async def test_maxlen_none_keeps_every_entry(bus: EventBus, redis_client: Redis) -> None:
    async with RedisBridge(bus, redis_client, forward=["tick"], maxlen=None) as bridge:
        for n in range(1000):
            bus.emit_sync("tick", n=n)
        await flush(bridge)

    assert await redis_client.xlen("eventbus") == 1000


# ---------------------------------------------------------------- payload refusal


class Color(enum.StrEnum):
    RED = "red"


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def cyclic() -> list[Any]:
    looped: list[Any] = []
    looped.append(looped)
    return looped


BAD_PAYLOADS = [
    pytest.param({"when": datetime.datetime(2024, 1, 2, 3, 4, 5)}, "when", id="datetime"),
    pytest.param({"day": datetime.date(2024, 1, 2)}, "day", id="date"),
    pytest.param({"pair": (1, 2)}, "pair", id="tuple"),
    pytest.param({"tags": {"a", "b"}}, "tags", id="set"),
    pytest.param({"tags": frozenset()}, "tags", id="frozenset"),
    pytest.param({"price": math.nan}, "price", id="nan"),
    pytest.param({"price": math.inf}, "price", id="inf"),
    pytest.param({"price": -math.inf}, "price", id="minus-inf"),
    pytest.param({"counts": {1: "one"}}, "counts", id="int-dict-key"),
    pytest.param({"counts": {None: "x"}}, "counts", id="none-dict-key"),
    pytest.param(
        {"lines": [{"price": 1.5}, {"price": datetime.date(2024, 1, 2)}]},
        "lines[1].price",
        id="nested-bad-value",
    ),
    pytest.param({"a": {"b": [0, {"c": math.nan}]}}, "a.b[1].c", id="deeply-placed-bad-value"),
    pytest.param({"blob": b"bytes"}, "blob", id="bytes"),
    pytest.param({"point": Point(1)}, "point", id="custom-object"),
    pytest.param({"color": Color.RED}, "color", id="str-enum"),
    pytest.param({"tree": deep(100)}, "tree", id="too-deep"),
    pytest.param({"loop": cyclic()}, "loop", id="cyclic-list"),
]


@pytest.mark.parametrize(("payload", "path"), BAD_PAYLOADS)
async def test_emit_refuses_a_payload_json_cannot_carry_naming_the_key(
    bus: EventBus, redis_client: Redis, payload: dict[str, Any], path: str
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]):
        with pytest.raises(PayloadError) as caught:
            await bus.emit("order.placed", **payload)

    assert f"'{path}" in str(caught.value)
    assert "'order.placed'" in str(caught.value)


async def test_a_payload_error_is_a_type_error_and_an_event_bus_error(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]):
        with pytest.raises(PayloadError) as caught:
            await bus.emit("order.placed", pair=(1, 2))

    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, EventBusError)


async def test_emit_sync_refuses_a_payload_json_cannot_carry(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]):
        with pytest.raises(PayloadError, match="'when'"):
            bus.emit_sync("order.placed", when=datetime.datetime(2024, 1, 1))


async def test_publish_refuses_a_payload_json_cannot_carry_when_called(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]):
        with pytest.raises(PayloadError, match="'tags'"):
            bus.publish("order.placed", tags={"x"})
        await asyncio.wait_for(bus.drain(), WAIT)


async def emit_with(bus: EventBus, how: str, name: str, /, **payload: Any) -> None:
    """Emit with ``bus.emit``, ``bus.emit_sync`` or ``bus.publish`` (and wait for it)."""
    if how == "emit":
        await bus.emit(name, **payload)
    elif how == "emit_sync":
        bus.emit_sync(name, **payload)
    else:
        await asyncio.wait_for(bus.publish(name, **payload), WAIT)


@pytest.mark.parametrize("how", ["emit", "emit_sync", "publish"])
async def test_a_refused_payload_runs_no_handler(
    bus: EventBus, redis_client: Redis, how: str
) -> None:
    ran: list[Event] = []
    bus.on("order.placed", ran.append, priority=100)

    async with RedisBridge(bus, redis_client, forward=["order.placed"]):
        with pytest.raises(PayloadError):
            await emit_with(bus, how, "order.placed", price=math.nan)
        await asyncio.wait_for(bus.drain(), WAIT)

    assert ran == []


@pytest.mark.parametrize("how", ["emit", "emit_sync", "publish"])
async def test_every_way_of_emitting_is_forwarded(
    bus: EventBus, redis_client: Redis, how: str
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        await emit_with(bus, how, "order.placed", way=how)
        await flush(bridge)

    (entry,) = await read_stream(redis_client)
    assert json.loads(entry["payload"]) == {"way": how}


async def test_a_refused_emission_is_not_sent(bus: EventBus, redis_client: Redis) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.*"]) as bridge:
        with pytest.raises(PayloadError):
            await bus.emit("order.placed", when=datetime.datetime(2024, 1, 1))
        assert (await bridge.stats()).outbox == 0
        await bus.emit("order.marker")
        await flush(bridge)

    assert await names_in(redis_client) == ["order.marker"]


async def test_a_recorder_does_not_record_a_refused_emission(
    bus: EventBus, redis_client: Redis
) -> None:
    with bus.record() as recorder:  # a tap shown the emission before the bridge
        async with RedisBridge(bus, redis_client, forward=["order.placed"]):
            with pytest.raises(PayloadError):
                await bus.emit("order.placed", pair=(1, 2))
            await bus.emit("order.placed", pair=[1, 2])

    assert recorder.names == ["order.placed"]
    assert recorder.events[0]["pair"] == [1, 2]


async def test_a_refused_emission_is_not_logged_as_emitted(redis_client: Redis) -> None:
    with structlog.testing.capture_logs() as logs:
        bus = EventBus("shop")
        bus.on("order.placed", lambda event: None)
        async with RedisBridge(bus, redis_client, forward=["order.placed"]):
            with pytest.raises(PayloadError):
                await bus.emit("order.placed", pair=(1, 2))
            await bus.emit("other.thing")

    emitted = [log for log in logs if log["event"] == "eventbus.emitted"]
    assert [log["event_name"] for log in emitted] == ["other.thing"]


async def test_an_emission_that_is_not_forwarded_may_carry_any_payload(
    bus: EventBus, redis_client: Redis
) -> None:
    when = datetime.datetime(2024, 1, 2)
    received: list[Event] = []
    bus.on("audit.local", received.append)

    async with RedisBridge(bus, redis_client, forward=["order.*"]) as bridge:
        report = await bus.emit("audit.local", when=when, pair=(1, 2), price=math.nan)
        await flush(bridge)

    assert report.ok
    assert received[0]["when"] is when
    assert await redis_client.exists("eventbus") == 0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="bool"),
        pytest.param(False, id="false"),
        pytest.param(-3, id="int"),
        pytest.param(2**70, id="big-int"),
        pytest.param(0.1, id="float"),
        pytest.param(-0.0, id="minus-zero"),
        pytest.param(1e308, id="huge-float"),
        pytest.param("Zoë 🎉", id="str"),
        pytest.param("", id="empty-str"),
        pytest.param(None, id="none"),
        pytest.param([], id="empty-list"),
        pytest.param([1, "two", None, [3.5]], id="list"),
        pytest.param({}, id="empty-dict"),
        pytest.param({"a": {"b": [True, {"c": None}]}}, id="nested-dict"),
        pytest.param(deep(60), id="deep-but-allowed"),
    ],
)
async def test_json_values_are_accepted_and_arrive_unchanged(
    bus: EventBus, redis_client: Redis, value: Any
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        await bus.emit("order.placed", value=value)
        await flush(bridge)

    (entry,) = await read_stream(redis_client)
    sent = json.loads(entry["payload"])["value"]
    assert sent == value
    assert type(sent) is type(value)


async def test_a_str_enum_value_is_refused_because_it_would_arrive_as_a_plain_str(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]):
        with pytest.raises(PayloadError, match="Color"):
            await bus.emit("order.placed", color=Color.RED)
        report = await bus.emit("order.placed", color=Color.RED.value)

    assert report.ok


# ---------------------------------------------------------------- two bridges, one bus


async def test_when_one_of_two_bridges_refuses_an_emission_the_other_does_not_keep_it(
    bus: EventBus, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = RedisBridge(bus, redis_client, stream="first", forward=["order.*"])
    second = RedisBridge(bus, redis_client, stream="second", forward=["order.*"])
    # The second bridge refuses what the first accepts (as a stricter check would):
    # every tap prepares before any keeps, so the first must not have queued it.
    original_prepare: Callable[..., dict[str, str]] = type(second._outbox).prepare

    def prepare(tap: Any, event: Event, parent: Any) -> dict[str, str]:
        if tap is second._outbox and event.name == "order.refused":
            raise PayloadError("refused by the second bridge")
        return original_prepare(tap, event, parent)

    monkeypatch.setattr(type(second._outbox), "prepare", prepare)
    async with first, second:
        with pytest.raises(PayloadError, match="second bridge"):
            await bus.emit("order.refused")
        assert (await first.stats()).outbox == 0
        await bus.emit("order.marker")
        await flush(first)
        await flush(second)

    assert await names_in(redis_client, "first") == ["order.marker"]
    assert await names_in(redis_client, "second") == ["order.marker"]


async def test_two_bridges_on_one_bus_both_refuse_a_bad_payload_and_keep_nothing(
    bus: EventBus, redis_client: Redis
) -> None:
    async with (
        RedisBridge(bus, redis_client, stream="first", forward=["order.*"]) as first,
        RedisBridge(bus, redis_client, stream="second", forward=["order.placed"]) as second,
    ):
        with pytest.raises(PayloadError):
            await bus.emit("order.placed", when=datetime.date(2024, 1, 1))
        await bus.emit("order.placed", n=1)
        await flush(first)
        await flush(second)

    assert await names_in(redis_client, "first") == ["order.placed"]
    assert await names_in(redis_client, "second") == ["order.placed"]


async def test_the_same_emission_goes_to_each_bridge_that_forwards_it(
    bus: EventBus, redis_client: Redis
) -> None:
    async with (
        RedisBridge(bus, redis_client, stream="first", forward=["order.*"]) as first,
        RedisBridge(bus, redis_client, stream="second", forward=["order.placed"]) as second,
    ):
        report = await bus.emit("order.placed", n=1)
        await bus.emit("order.cancelled")
        await flush(first)
        await flush(second)

    assert [e["id"] for e in await read_stream(redis_client, "second")] == [report.event.id]
    assert await names_in(redis_client, "first") == ["order.placed", "order.cancelled"]


# ---------------------------------------------------------------- flush


async def test_flush_with_nothing_queued_returns_without_waiting(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        flushing = bridge.flush()
        with pytest.raises(StopIteration):
            flushing.send(None)  # done at the first step: it never suspended


async def test_flush_on_a_bridge_never_started_returns(bus: EventBus, redis_client: Redis) -> None:
    bridge = RedisBridge(bus, redis_client, forward=["order.placed"])

    await asyncio.wait_for(bridge.flush(), WAIT)

    assert not bridge.running


async def test_flush_waits_until_every_queued_entry_is_in_the_stream(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["tick"], batch=10) as bridge:
        for n in range(95):
            bus.emit_sync("tick", n=n)  # queued: the writer has not run yet
        assert (await bridge.stats()).outbox == 95

        await flush(bridge)

        assert await redis_client.xlen("eventbus") == 95
        assert (await bridge.stats()).outbox == 0


async def test_concurrent_flushes_all_return_once_their_entries_are_sent(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["tick"], batch=5) as bridge:
        bus.emit_sync("tick", n=0)
        early = asyncio.ensure_future(bridge.flush())
        for n in range(1, 40):
            bus.emit_sync("tick", n=n)
        late = asyncio.ensure_future(bridge.flush())
        await asyncio.wait_for(asyncio.gather(early, late), WAIT)

        assert await redis_client.xlen("eventbus") == 40


async def test_a_flush_waiting_when_the_bridge_stops_returns_once_everything_is_sent(
    bus: EventBus, redis_client: Redis
) -> None:
    bridge = RedisBridge(bus, redis_client, forward=["tick"], batch=2)
    await bridge.start()
    for n in range(9):
        bus.emit_sync("tick", n=n)
    flushing = asyncio.ensure_future(bridge.flush())

    await bridge.stop()

    await asyncio.wait_for(flushing, WAIT)
    assert await redis_client.xlen("eventbus") == 9


async def test_a_flush_waiting_when_stop_gives_up_raises_runtime_error(
    bus: EventBus, unreachable_client: Redis
) -> None:
    bridge = RedisBridge(bus, unreachable_client, forward=["order.placed"])
    await bridge.start()
    await bus.emit("order.placed")
    flushing = asyncio.ensure_future(bridge.flush())  # waits from stop's first await on

    await bridge.stop(timeout=0.05)  # the server cannot be reached: the entry stays queued

    with pytest.raises(RuntimeError, match="not running"):
        await asyncio.wait_for(flushing, WAIT)


async def test_flush_on_a_stopped_bridge_with_queued_entries_raises_runtime_error(
    bus: EventBus, unreachable_client: Redis
) -> None:
    bridge = RedisBridge(bus, unreachable_client, forward=["order.placed"])
    await bridge.start()
    await bus.emit("order.placed")
    await bridge.stop(timeout=0.05)  # the server cannot be reached: the entry stays queued

    assert (await bridge.stats()).outbox == 1
    with pytest.raises(RuntimeError, match="not running"):
        await bridge.flush()


# ---------------------------------------------------------------- lifecycle


async def test_async_with_starts_and_stops_the_bridge(bus: EventBus, redis_client: Redis) -> None:
    bridge = RedisBridge(bus, redis_client, forward=["order.placed"])
    assert not bridge.running

    async with bridge as entered:
        assert entered is bridge
        assert bridge.running

    assert not bridge.running


async def test_start_and_stop_set_running(bus: EventBus, redis_client: Redis) -> None:
    bridge = RedisBridge(bus, redis_client, forward=["order.placed"])

    await bridge.start()
    try:
        assert bridge.running
    finally:
        await bridge.stop()

    assert not bridge.running


async def test_starting_a_running_bridge_raises_runtime_error(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        with pytest.raises(RuntimeError, match="already running"):
            await bridge.start()
        assert bridge.running


async def test_stopping_a_bridge_that_is_not_running_is_harmless(
    bus: EventBus, redis_client: Redis
) -> None:
    bridge = RedisBridge(bus, redis_client, forward=["order.placed"])

    await bridge.stop()  # never started
    await bridge.start()
    await bridge.stop()
    await bridge.stop()  # stopped twice

    assert not bridge.running


async def test_a_bridge_not_started_forwards_and_refuses_nothing(
    bus: EventBus, redis_client: Redis
) -> None:
    bridge = RedisBridge(bus, redis_client, forward=["order.placed"])

    report = await bus.emit("order.placed", when=datetime.date(2024, 1, 1))

    assert report.ok
    assert (await bridge.stats()).outbox == 0
    assert await redis_client.exists("eventbus") == 0


async def test_after_stop_emissions_are_no_longer_forwarded(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]) as bridge:
        await bus.emit("order.placed", n=1)

    await bus.emit("order.placed", n=2)

    assert (await bridge.stats()).outbox == 0
    assert [json.loads(e["payload"]) for e in await read_stream(redis_client)] == [{"n": 1}]


async def test_after_stop_payloads_are_no_longer_checked(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["order.placed"]):
        pass

    report = await bus.emit("order.placed", when=datetime.date(2024, 1, 1))

    assert report.ok


async def test_stop_sends_what_was_queued_before_returning(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, forward=["tick"], batch=3):
        for n in range(20):
            bus.emit_sync("tick", n=n)

    assert await redis_client.xlen("eventbus") == 20


async def test_a_stopped_bridge_can_be_started_again(bus: EventBus, redis_client: Redis) -> None:
    bridge = RedisBridge(bus, redis_client, forward=["order.placed"])
    async with bridge:
        await bus.emit("order.placed", n=1)
    await bus.emit("order.placed", n=2)  # stopped: not sent

    async with bridge:
        assert bridge.running
        await bus.emit("order.placed", n=3)
        await flush(bridge)

    payloads = [json.loads(e["payload"]) for e in await read_stream(redis_client)]
    assert payloads == [{"n": 1}, {"n": 3}]
    assert (await bridge.stats()).forwarded == 2


# ---------------------------------------------------------------- logging


async def test_start_logs_started_with_stream_group_and_consumer(
    bus: EventBus, redis_client: Redis
) -> None:
    with structlog.testing.capture_logs() as logs:
        bridge = RedisBridge(
            bus,
            redis_client,
            stream="shop",
            group="billing",
            consumer="web-1",
            forward=["order.placed"],
        )
        await bridge.start()
        started = [log for log in logs if log["event"] == "eventbus.redis.started"]
        await bridge.stop()

    assert len(started) == 1
    assert started[0]["log_level"] == "info"
    assert started[0]["stream"] == "shop"
    assert started[0]["group"] == "billing"
    assert started[0]["consumer"] == "web-1"


async def test_stop_logs_stopped_with_stream_group_and_consumer(
    bus: EventBus, redis_client: Redis
) -> None:
    with structlog.testing.capture_logs() as logs:
        bridge = RedisBridge(
            bus,
            redis_client,
            stream="shop",
            group="billing",
            consumer="web-1",
            forward=["order.placed"],
        )
        await bridge.start()
        await bridge.stop()

    stopped = [log for log in logs if log["event"] == "eventbus.redis.stopped"]
    assert len(stopped) == 1
    assert stopped[0]["log_level"] == "info"
    assert stopped[0]["stream"] == "shop"
    assert stopped[0]["group"] == "billing"
    assert stopped[0]["consumer"] == "web-1"
    assert logs[-1] is stopped[0]


async def test_each_batch_sent_is_logged_at_debug_with_its_count(
    bus: EventBus, redis_client: Redis
) -> None:
    with structlog.testing.capture_logs() as logs:
        bridge = RedisBridge(bus, redis_client, stream="shop", forward=["tick"], batch=4)
        async with bridge:
            for n in range(10):
                bus.emit_sync("tick", n=n)
            await flush(bridge)

    forwarded = [log for log in logs if log["event"] == "eventbus.redis.forwarded"]
    assert [log["count"] for log in forwarded] == [4, 4, 2]
    assert {log["log_level"] for log in forwarded} == {"debug"}
    assert {log["stream"] for log in forwarded} == {"shop"}


async def test_a_bridge_uses_the_logger_it_is_given(bus: EventBus, redis_client: Redis) -> None:
    with structlog.testing.capture_logs() as logs:
        logger = structlog.get_logger("mine").bind(app="shop")
        async with RedisBridge(bus, redis_client, forward=["order.placed"], logger=logger):
            pass

    assert [log.get("app") for log in logs if log["event"].startswith("eventbus.redis.")] == [
        "shop",
        "shop",
    ]


async def test_no_log_entry_ever_holds_the_payload(redis_client: Redis) -> None:
    secret = "SENTINEL-4c1d-Zoë"
    handled_over_there = asyncio.Event()

    def fail_over_there(event: Event) -> None:
        handled_over_there.set()
        raise RuntimeError("failed")

    with structlog.testing.capture_logs() as logs:
        bus = EventBus("shop")
        bus.on("member.created", lambda event: 1 / 0)  # a failing handler is logged too
        other_bus = EventBus("crm")
        other_bus.on("member.created", fail_over_there)
        sender = RedisBridge(bus, redis_client, group="web", consumer="w1", forward=["member.*"])
        reader = RedisBridge(
            other_bus, redis_client, group="crm", consumer="c1", start_at="0", max_deliveries=1
        )
        async with sender, reader:
            await bus.emit("member.created", email=secret, nested={"k": [secret]})
            with pytest.raises(PayloadError):
                await bus.emit("member.created", email=secret, when=datetime.date(2024, 1, 1))
            await flush(sender)
            await asyncio.wait_for(handled_over_there.wait(), WAIT)

    assert any(log["event"] == "eventbus.redis.forwarded" for log in logs)
    assert any(log["event"] == "eventbus.handler_failed" for log in logs)
    assert "SENTINEL" not in repr(logs)


# ---------------------------------------------------------------- consistency with encode


async def test_the_entry_is_what_encode_makes_of_the_event(
    bus: EventBus, redis_client: Redis
) -> None:
    async with RedisBridge(bus, redis_client, group="g", forward=["order.placed"]) as bridge:
        report = await bus.emit("order.placed", source="s", n=1)
        await flush(bridge)

    assert await read_stream(redis_client) == [encode(report.event, (), "g", "eventbus")]
