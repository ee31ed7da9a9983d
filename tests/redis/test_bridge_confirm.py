"""Producer guarantees: confirmed mode (an emission returns once Redis has its entry, or
raises ``NotSentError``), the bounded outbox of the asynchronous mode (``max_outbox``,
``when_full``), ``flush(timeout=...)`` and ``mark()``/``sent_up_to()``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bridge_helpers import WAIT, ClientFactory, Watch, stream_entries
from emitters import Emitter
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import NotSentError, OutboxFullError, RedisBridge
from eventbus.redis.testing import RedisServer

STREAM = "eventbus"


async def ids_in(client: Redis) -> list[str]:
    return [fields["id"] for fields in await stream_entries(client, STREAM)]


@pytest.fixture
async def unreachable_client() -> AsyncIterator[Redis]:
    """A client for a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def briefly(bridge: RedisBridge) -> AsyncIterator[RedisBridge]:
    """The bridge, running; stopped without waiting for a server that never answers."""
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.stop(timeout=0.1)


def recording(bus: EventBus) -> list[Event]:
    ran: list[Event] = []
    bus.on("order.*", ran.append)
    return ran


# ---------------------------------------------------------------- confirmed mode


async def test_a_confirmed_emission_returns_once_its_entry_is_in_the_stream(
    emit: Emitter, redis_client: Redis
) -> None:
    bus = EventBus("shop")
    async with RedisBridge(bus, redis_client, forward="order.*", confirm=True):
        report = await emit(bus, "order.placed", total=12)

        assert await ids_in(redis_client) == [report.event.id]  # no flush needed


async def test_concurrent_confirmed_emitters_share_pipelined_round_trips(
    redis_client: Redis, watch: Watch
) -> None:
    bus = EventBus("shop")
    async with RedisBridge(bus, redis_client, forward="order.*", confirm=True):
        reports = await asyncio.gather(*(bus.emit("order.placed", n=n) for n in range(300)))

        assert sorted(await ids_in(redis_client)) == sorted(r.event.id for r in reports)
    batches = watch.logged("eventbus.redis.forwarded")
    assert sum(entry["count"] for entry in batches) == 300
    assert len(batches) < 300


async def test_confirmed_emissions_from_threads_and_tasks_at_once_are_all_in_the_stream(
    redis_client: Redis,
) -> None:
    bus = EventBus("shop")

    def from_thread(thread: int) -> list[str]:
        return [bus.emit_sync("order.placed", thread=thread, n=n).event.id for n in range(50)]

    async with RedisBridge(bus, redis_client, forward="order.*", confirm=True):
        threads = [asyncio.to_thread(from_thread, thread) for thread in range(4)]
        tasks = [bus.emit("order.placed", n=n) for n in range(50)]
        done = await asyncio.wait_for(asyncio.gather(*threads, *tasks), WAIT)
        stream = await ids_in(redis_client)

    confirmed = [i for ids in done[:4] for i in ids] + [report.event.id for report in done[4:]]
    assert len(confirmed) == 250
    assert sorted(stream) == sorted(confirmed)


async def test_a_confirmed_emission_redis_does_not_take_raises_not_sent_error_and_runs_nothing(
    emit: Emitter, unreachable_client: Redis
) -> None:
    bus = EventBus("shop")
    ran = recording(bus)
    bridge = RedisBridge(bus, unreachable_client, forward="order.*", confirm=True, send_timeout=0.1)
    async with briefly(bridge):
        with pytest.raises(NotSentError, match=r"'order.placed'.*send_timeout=0.1 s"):
            await asyncio.wait_for(emit(bus, "order.placed", total=12), WAIT)

    assert ran == []


async def test_a_confirmed_emission_that_failed_is_not_sent_when_redis_is_back(
    own_redis_server: RedisServer, new_client: ClientFactory, watch: Watch
) -> None:
    bus = EventBus("shop")
    client = new_client()
    bridge = RedisBridge(bus, client, forward="order.*", confirm=True, send_timeout=1.0)
    async with bridge:
        own_redis_server.kill()
        with pytest.raises(NotSentError):
            await asyncio.wait_for(bus.emit("order.placed", n=1), WAIT)
        own_redis_server.restart()
        await bridge.flush(timeout=WAIT)  # the writer is past its back-off: the entry dropped
        second = await asyncio.wait_for(bus.emit("order.placed", n=2), WAIT)

        assert await ids_in(client) == [second.event.id]


async def test_a_confirmed_emission_cancelled_before_redis_took_it_is_not_sent(
    own_redis_server: RedisServer, new_client: ClientFactory, watch: Watch
) -> None:
    bus = EventBus("shop")
    ran = recording(bus)
    client = new_client()
    async with RedisBridge(bus, client, forward="order.*", confirm=True, send_timeout=WAIT):
        own_redis_server.kill()
        emission = asyncio.ensure_future(bus.emit("order.placed", n=1))
        await watch.until(lambda: bool(watch.logged("eventbus.redis.connection_lost")))
        emission.cancel()
        with pytest.raises(asyncio.CancelledError):
            await emission
        own_redis_server.restart()
        second = await asyncio.wait_for(bus.emit("order.placed", n=2), WAIT)

        assert await ids_in(client) == [second.event.id]
    assert [event["n"] for event in ran] == [2]


async def test_emit_sync_of_a_confirmed_event_inside_the_running_loop_is_refused(
    redis_client: Redis,
) -> None:
    bus = EventBus("shop")
    ran = recording(bus)
    async with RedisBridge(bus, redis_client, forward="order.*", confirm=True) as bridge:
        with pytest.raises(RuntimeError, match=r"use `await bus.emit\(...\)`"):
            bus.emit_sync("order.placed")
        await bridge.flush(timeout=WAIT)

    assert ran == []
    assert await ids_in(redis_client) == []


async def test_a_handler_of_a_received_event_waits_for_its_own_confirmed_emission(
    redis_client: Redis,
) -> None:
    web, worker = EventBus("web"), EventBus("worker")
    seen_in_stream: list[bool] = []
    done = asyncio.Event()

    @worker.on("order.placed")
    async def book(event: Event) -> None:
        report = await worker.emit("ledger.written", order=event.id)
        seen_in_stream.append(report.event.id in await ids_in(redis_client))
        done.set()

    async with (
        RedisBridge(worker, redis_client, group="g", forward="ledger.*", confirm=True, block=0.05),
        RedisBridge(web, redis_client, forward="order.*", confirm=True),
    ):
        await web.emit("order.placed")
        await asyncio.wait_for(done.wait(), WAIT)

    assert seen_in_stream == [True]


# ---------------------------------------------------------------- the bounded outbox


async def test_a_full_outbox_refuses_an_emission_with_outbox_full_error_before_handlers_run(
    emit: Emitter, unreachable_client: Redis
) -> None:
    bus = EventBus("shop")
    ran = recording(bus)
    async with briefly(
        RedisBridge(bus, unreachable_client, forward="order.*", max_outbox=2)
    ) as bridge:
        await emit(bus, "order.placed", n=1)
        await emit(bus, "order.placed", n=2)
        with pytest.raises(OutboxFullError, match="max_outbox=2"):
            await emit(bus, "order.placed", n=3)

        assert (await bridge.stats()).outbox == 2
    assert [event["n"] for event in ran] == [1, 2]


async def test_with_when_full_wait_an_emission_past_max_outbox_waits_until_its_entry_is_sent(
    own_redis_server: RedisServer, new_client: ClientFactory, watch: Watch
) -> None:
    bus = EventBus("shop")
    client = new_client()
    bridge = RedisBridge(
        bus, client, forward="order.*", max_outbox=1, when_full="wait", send_timeout=WAIT
    )
    async with bridge:
        own_redis_server.kill()
        first = await bus.emit("order.placed", n=1)  # room: returns at once
        waiting = asyncio.ensure_future(bus.emit("order.placed", n=2))
        await watch.until(lambda: bool(watch.logged("eventbus.redis.connection_lost")))
        assert not waiting.done()
        own_redis_server.restart()
        second = await asyncio.wait_for(waiting, WAIT)

        assert await ids_in(client) == [first.event.id, second.event.id]


async def test_with_when_full_wait_an_emission_fails_after_send_timeout(
    unreachable_client: Redis,
) -> None:
    bus = EventBus("shop")
    ran = recording(bus)
    bridge = RedisBridge(
        bus, unreachable_client, forward="order.*", max_outbox=1, when_full="wait", send_timeout=0.1
    )
    async with briefly(bridge):
        await bus.emit("order.placed", n=1)
        with pytest.raises(NotSentError):
            await asyncio.wait_for(bus.emit("order.placed", n=2), WAIT)

    assert [event["n"] for event in ran] == [1]


# ---------------------------------------------------------------- flush and marks


async def test_flush_with_a_timeout_raises_timeout_error_naming_what_is_left(
    unreachable_client: Redis,
) -> None:
    bus = EventBus("shop")
    async with briefly(RedisBridge(bus, unreachable_client, forward="order.*")) as bridge:
        await bus.emit("order.placed")
        with pytest.raises(TimeoutError, match="1 forwarded emissions are still not in the stream"):
            await bridge.flush(timeout=0.05)


async def test_sent_up_to_a_mark_waits_for_the_emissions_made_before_it(
    redis_client: Redis,
) -> None:
    bus = EventBus("shop")
    async with RedisBridge(bus, redis_client, forward="order.*") as bridge:
        assert bridge.mark() == 0
        reports = [await bus.emit("order.placed", n=n) for n in range(5)]
        mark = bridge.mark()
        await asyncio.wait_for(bridge.sent_up_to(mark), WAIT)

        assert mark == 5
        assert await ids_in(redis_client) == [report.event.id for report in reports]


async def test_sent_up_to_an_old_mark_returns_at_once(redis_client: Redis) -> None:
    bus = EventBus("shop")
    async with RedisBridge(bus, redis_client, forward="order.*") as bridge:
        await bus.emit("order.placed")
        await bridge.flush(timeout=WAIT)
        await bridge.sent_up_to(bridge.mark())  # nothing left: no wait


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"confirm": 1}, TypeError, "confirm must be a bool"),
        ({"max_outbox": 0}, ValueError, "max_outbox must be >= 1"),
        ({"max_outbox": 1.5}, TypeError, "max_outbox must be an int"),
        ({"when_full": "drop"}, ValueError, "when_full must be 'raise' or 'wait'"),
        ({"send_timeout": 0}, ValueError, "send_timeout must be > 0"),
        ({"send_timeout": None}, TypeError, "send_timeout must be a number of seconds"),
    ],
)
async def test_bad_producer_options_are_refused(
    redis_client: Redis, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RedisBridge(EventBus("shop"), redis_client, forward="order.*", **options)


async def test_a_confirmed_emission_waiting_when_the_bridge_stops_raises_not_sent_error(
    unreachable_client: Redis,
) -> None:
    bus = EventBus("shop")
    ran = recording(bus)
    bridge = RedisBridge(
        bus, unreachable_client, forward="order.*", confirm=True, send_timeout=WAIT
    )
    await bridge.start()
    emission = asyncio.ensure_future(bus.emit("order.placed"))
    await asyncio.sleep(0)  # the emission is taken and waits for Redis
    await bridge.stop(timeout=0.1)

    with pytest.raises(NotSentError, match="is not running"):
        await asyncio.wait_for(emission, WAIT)
    assert ran == []


async def test_the_outbox_waits_for_a_mark_under_the_consumer_sides_name_too(
    redis_client: Redis,
) -> None:
    bus = EventBus("shop")
    bridge = RedisBridge(bus, redis_client, forward="order.*")
    async with bridge:
        report = await bus.emit("order.placed")
        await asyncio.wait_for(bridge._outbox.wait_forwarded(bridge._outbox.mark()), WAIT)

        assert await ids_in(redis_client) == [report.event.id]
