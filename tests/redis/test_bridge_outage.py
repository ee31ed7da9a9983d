"""The server going away and coming back: the bridge reports it, recovers, and acknowledges
nothing wrongly.

Each test runs its own append-only redis-server (``own_redis_server``: every write fsynced),
kills it (SIGKILL, as a crash) and restarts it on the same port with its data. The clients
fail fast while it is gone (no client-side retries, short connect timeout), so what is tested
is the bridge's own waiting and reconnecting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from bridge_helpers import (
    ClientFactory,
    pending_entries,
)
from bridge_helpers import consumer as quick_consumer
from redis.asyncio import Redis
from structlog.testing import capture_logs

from eventbus import Event, EventBus
from eventbus.redis import BridgeStats, RedisBridge
from eventbus.redis.testing import RedisServer

STREAM = "jobs"
GROUP = "workers"
TIMEOUT = 60.0
"""The guard of every wait (generous: a loaded machine is slow, not broken)."""
OUTAGE_LOGS = ("eventbus.redis.connection_lost", "eventbus.redis.reconnected")


async def stats_when(
    bridge: RedisBridge, condition: Callable[[BridgeStats], bool], what: str
) -> BridgeStats:
    """Poll the bridge's stats until ``condition`` holds (at most ``TIMEOUT`` seconds)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        stats = await bridge.stats()
        if condition(stats):
            return stats
        assert time.monotonic() < deadline, f"{what}: not within {TIMEOUT}s; last {stats}"
        await asyncio.sleep(0.01)


async def within(awaitable: Awaitable[Any], what: str) -> Any:
    """Await with a deadline, failing with ``what``."""
    try:
        async with asyncio.timeout(TIMEOUT):
            return await awaitable
    except TimeoutError:
        pytest.fail(f"{what}: not within {TIMEOUT}s")


async def restart(server: RedisServer) -> None:
    """Start the server again (same port, same data) without blocking the event loop, so the
    bridges keep trying meanwhile."""
    await asyncio.to_thread(server.restart)


async def produce(client: Redis, *seqs: int) -> list[str]:
    """Forward one ``job.run`` per seq from a producer bus of its own; the event ids."""
    producer = EventBus("producer")
    async with producer, RedisBridge(producer, client, stream=STREAM, forward="job.*") as bridge:
        ids = [(await producer.emit("job.run", seq=seq)).event.id for seq in seqs]
        await within(bridge.flush(), "flush")
    return ids


def consumer(bus: EventBus, client: Redis) -> RedisBridge:
    """A consumer bridge that reads the whole stream and claims idle entries quickly: an
    acknowledgement the bridge lost would show up as the entry being handled again."""
    return quick_consumer(bus, client, stream=STREAM, group=GROUP, start_at="0", min_idle=0.2)


def outage_logs(logs: list[MutableMapping[str, Any]]) -> list[tuple[str, str]]:
    return [(log["event"], log["log_level"]) for log in logs if log["event"] in OUTAGE_LOGS]


async def pending_of(client: Redis) -> list[tuple[str, int]]:
    """(consumer, times delivered) of each entry the group has not acknowledged."""
    return [(name, times) for _, name, times in await pending_entries(client, STREAM, GROUP)]


# ------------------------------------------------------------------ producer side


async def test_emissions_while_the_server_is_down_are_accepted_and_wait_in_the_outbox(
    own_redis_server: RedisServer, new_client: ClientFactory, bus: EventBus
) -> None:
    async with RedisBridge(bus, new_client(), stream=STREAM, forward="job.*") as bridge:
        own_redis_server.kill()

        reports = [await bus.emit("job.run", seq=seq) for seq in range(5)]
        stats = await stats_when(
            bridge, lambda stats: stats.connection_errors > 0, "the writer finds no server"
        )

        assert [report.event["seq"] for report in reports] == [0, 1, 2, 3, 4]
        assert (stats.outbox, stats.forwarded, stats.connected) == (5, 0, False)
        await restart(own_redis_server)  # lets the bridge stop without waiting for a server


async def test_flush_waits_for_the_server_then_sends_in_order(
    own_redis_server: RedisServer, new_client: ClientFactory, bus: EventBus
) -> None:
    """flush() waits for the server; then the outbox is in the stream, once, in order."""
    client = new_client()
    async with RedisBridge(bus, client, stream=STREAM, forward="job.*") as bridge:
        ids = [(await bus.emit("job.run", seq=seq)).event.id for seq in range(3)]
        await within(bridge.flush(), "flush before the outage")
        own_redis_server.kill()

        ids += [(await bus.emit("job.run", seq=seq)).event.id for seq in range(3, 253)]
        flushed = asyncio.create_task(bridge.flush())
        await stats_when(
            bridge, lambda stats: stats.connection_errors >= 3, "the writer keeps trying"
        )
        assert not flushed.done()
        await restart(own_redis_server)
        await within(flushed, "flush after the restart")
        stats = await bridge.stats()

    entries: Any = await client.xrange(STREAM)
    assert [fields[b"id"].decode() for _, fields in entries] == ids
    assert [fields[b"payload"] for _, fields in entries] == [
        f'{{"seq":{seq}}}'.encode() for seq in range(253)
    ]
    assert (stats.forwarded, stats.outbox, stats.connected) == (253, 0, True)


async def test_a_writer_outage_is_logged_once_as_an_error_and_the_recovery_once(
    own_redis_server: RedisServer, new_client: ClientFactory, bus: EventBus
) -> None:
    with capture_logs() as logs:
        async with RedisBridge(bus, new_client(), stream=STREAM, forward="job.*") as bridge:
            await bus.emit("job.run", seq=0)
            await within(bridge.flush(), "flush before the outage")
            own_redis_server.kill()
            await bus.emit("job.run", seq=1)
            await stats_when(
                bridge, lambda stats: stats.connection_errors >= 3, "the writer keeps trying"
            )
            await restart(own_redis_server)
            await within(bridge.flush(), "flush after the restart")

    assert outage_logs(logs) == [
        ("eventbus.redis.connection_lost", "error"),
        ("eventbus.redis.reconnected", "info"),
    ]


# ------------------------------------------------------------------ consumer side


async def test_handler_succeeding_during_outage_is_acked_after_it(
    own_redis_server: RedisServer, new_client: ClientFactory, bus: EventBus
) -> None:
    """A handler that succeeds during the outage is acknowledged after it, and runs once."""
    entered, release = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def slow(event: Event) -> None:
        calls.append(event.id)
        entered.set()
        await release.wait()

    bus.on("job.run", slow)
    async with consumer(bus, new_client()) as bridge:
        (event_id,) = await produce(new_client(), 0)
        await within(entered.wait(), "the handler starts")
        own_redis_server.kill()
        release.set()
        down = await stats_when(bridge, lambda stats: not stats.connected, "the ack fails")
        assert down.acked == 0

        await restart(own_redis_server)
        up = await stats_when(bridge, lambda stats: stats.pending == 0, "the entry is acked")

    assert calls == [event_id]
    assert (up.acked, up.consumed, up.retried, up.dead_lettered) == (1, 1, 0, 0)
    assert await pending_of(new_client()) == []


async def test_handler_failing_during_outage_runs_again_after_it(
    own_redis_server: RedisServer, new_client: ClientFactory, bus: EventBus
) -> None:
    """A handler that fails during the outage is not acknowledged, and runs again after it."""
    entered = [asyncio.Event(), asyncio.Event()]
    release = [asyncio.Event(), asyncio.Event()]
    calls: list[str] = []

    async def flaky(event: Event) -> None:
        attempt = len(calls)
        calls.append(event.id)
        entered[attempt].set()
        await release[attempt].wait()
        if attempt == 0:
            raise RuntimeError("failed while the server was down")

    bus.on("job.run", flaky)
    async with consumer(bus, new_client()) as bridge:
        (event_id,) = await produce(new_client(), 0)
        await within(entered[0].wait(), "the first attempt starts")
        own_redis_server.kill()
        release[0].set()
        down = await stats_when(bridge, lambda stats: not stats.connected, "the outage noticed")
        assert (down.acked, down.retried) == (0, 1)

        await restart(own_redis_server)
        client = new_client()  # a pooled connection from before the restart fails once
        await within(entered[1].wait(), "the entry is delivered again after the restart")
        assert await pending_of(client) == [("c1", 2)]
        release[1].set()
        up = await stats_when(bridge, lambda stats: stats.pending == 0, "the entry is acked")

    assert calls == [event_id, event_id]
    assert (up.acked, up.consumed, up.dead_lettered) == (1, 2, 0)
    assert await client.xlen(f"{STREAM}:dead") == 0


async def test_a_consumer_handles_entries_added_after_the_server_restarts(
    own_redis_server: RedisServer, new_client: ClientFactory, bus: EventBus
) -> None:
    seen: asyncio.Queue[tuple[int, str]] = asyncio.Queue()

    async def record(event: Event) -> None:
        seen.put_nowait((event["seq"], event.id))

    bus.on("job.run", record)
    client = new_client()
    async with consumer(bus, new_client()) as bridge:
        (before,) = await produce(client, 0)
        assert await within(seen.get(), "the entry before the outage") == (0, before)
        own_redis_server.kill()
        await stats_when(bridge, lambda stats: not stats.connected, "the outage noticed")

        await restart(own_redis_server)
        (after,) = await produce(client, 1)
        assert await within(seen.get(), "the entry after the restart") == (1, after)
        stats = await stats_when(bridge, lambda stats: stats.pending == 0, "both acked")

    assert seen.empty()
    assert (stats.consumed, stats.acked, stats.connected) == (2, 2, True)


async def test_a_consumer_reports_the_outage_once_as_an_error_and_its_recovery(
    own_redis_server: RedisServer, new_client: ClientFactory, bus: EventBus
) -> None:
    bus.on("job.run", lambda event: None)
    with capture_logs() as logs:
        async with consumer(bus, new_client()) as bridge:
            await stats_when(bridge, lambda stats: stats.pending == 0, "the group is created")
            own_redis_server.kill()
            down = await stats_when(
                bridge, lambda stats: stats.connection_errors >= 3, "the consumer keeps trying"
            )
            await restart(own_redis_server)
            up = await stats_when(bridge, lambda stats: stats.connected, "the consumer is back")

    assert down.connected is False
    assert up.connection_errors >= 3
    assert outage_logs(logs) == [
        ("eventbus.redis.connection_lost", "error"),
        ("eventbus.redis.reconnected", "info"),
    ]
