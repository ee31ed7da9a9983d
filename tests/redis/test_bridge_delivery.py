"""RedisBridge, delivery: acknowledgement, retries, dead letters, claiming what a crashed
consumer left, restarts, stop(), dedup and stats — against a real redis-server.

Tests never sleep to wait: they wait for a handler call or a log entry (``Watch``), with a
60-second guard (``WAIT``).
"""

from __future__ import annotations

import asyncio
import json

from bridge_helpers import (
    DEAD,
    STREAM,
    WAIT,
    Watch,
    add,
    consumer,
    create_group,
    entry,
    failing,
    ids,
    pending,
    pending_entries,
    stream_entries,
)
from redis.asyncio import Redis

from eventbus import Event, EventBus

ATTEMPTS = "{events}:g:attempts"
"""Where group "g" keeps how many times a handler started on each pending entry."""

# ---------------------------------------------------------------- helpers


class Gate:
    """An async handler that waits for ``release`` (``started`` tells it is waiting)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished: list[str] = []

    async def __call__(self, event: Event) -> None:
        self.started.set()
        await self.release.wait()
        self.finished.append(event.id)

    async def wait_started(self) -> None:
        await asyncio.wait_for(self.started.wait(), WAIT)


# ---------------------------------------------------------------- acknowledgement


async def test_entry_is_acknowledged_only_after_every_handler_succeeded(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    first: list[str] = []
    gate = Gate()
    bus.on("order.placed", first.append, priority=1)
    bus.on("order.placed", gate)
    async with consumer(bus, redis_client) as bridge:
        await add(redis_client, "e1")
        await gate.wait_started()
        assert first  # the first handler is done, the second is still running
        assert await pending(redis_client) == 1
        assert (await bridge.stats()).acked == 0

        gate.release.set()
        await watch.until(lambda: watch.acked() == 1)
        assert await pending(redis_client) == 0
        stats = await bridge.stats()

    assert gate.finished == ["e1"]
    assert stats.acked == 1
    assert stats.consumed == 1


# ---------------------------------------------------------------- failures and retries


async def test_failed_entry_stays_pending_and_runs_again(redis_client: Redis, watch: Watch) -> None:
    """A failed entry stays pending, and all its handlers run again after retry_delay."""
    await create_group(redis_client)
    bus = EventBus("b")
    flaky_runs: list[str] = []
    bus.on("order.placed", watch.record, priority=1)
    bus.on("order.placed", failing(flaky_runs, failures=1))
    async with consumer(bus, redis_client, retry_delay=0.05, min_idle=30) as bridge:
        await add(redis_client, "e1")
        await watch.until(lambda: watch.acked() == 1)
        stats = await bridge.stats()

    assert flaky_runs == ["e1", "e1"]
    assert ids(watch.handled) == ["e1", "e1"]  # the whole entry is delivered again
    assert stats.retried == 1
    assert stats.consumed == 2
    assert stats.acked == 1
    assert stats.dead_lettered == 0
    assert stats.pending == 0
    assert await redis_client.xlen(DEAD) == 0


async def test_always_failing_entry_is_dead_lettered_after_exactly_max_deliveries(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    runs: list[str] = []
    bus.on("order.placed", failing(runs))
    async with consumer(bus, redis_client, max_deliveries=3) as bridge:
        await add(redis_client, "e1")
        await watch.until(lambda: watch.dead_lettered() == 1)
        stats = await bridge.stats()

    assert runs == ["e1", "e1", "e1"]
    assert stats.consumed == 3
    assert stats.retried == 2
    assert stats.dead_lettered == 1
    assert stats.acked == 0
    assert stats.pending == 0  # the original is acknowledged
    assert await redis_client.xlen(DEAD) == 1


async def test_dead_letter_entry_keeps_the_original_fields_and_says_who_failed_and_why(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", failing([]), priority=1)
    bus.on("order.placed", lambda event: None)

    @bus.on("order.placed")
    def refuse(event: Event) -> None:
        raise KeyError("no such customer")

    first, _, second = (info.name for info in bus.listeners("order.placed"))
    original = entry(id="e1", source="shop", parent="p0", depth="1", chain="cart.checked_out")
    async with consumer(bus, redis_client, consumer="worker-7", max_deliveries=2):
        entry_id = (await redis_client.xadd(STREAM, original)).decode()
        await watch.until(lambda: watch.dead_lettered() == 1)

    [dead] = await stream_entries(redis_client, DEAD)
    assert {key: dead[key] for key in original} == original
    assert dead["entry_id"] == entry_id
    assert dead["group"] == "g"
    assert dead["consumer"] == "worker-7"
    assert dead["deliveries"] == "2"
    assert json.loads(dead["errors"]) == [
        {"handler": first, "type": "ValueError", "message": "cannot handle e1 (run 2)"},
        {"handler": second, "type": "KeyError", "message": "'no such customer'"},
    ]
    assert set(dead) == {*original, "entry_id", "group", "consumer", "deliveries", "errors"}


async def test_retries_are_logged_as_warnings_and_the_dead_letter_as_an_error(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", failing([]))
    async with consumer(bus, redis_client, max_deliveries=3):
        [entry_id] = await add(redis_client, "e1")
        await watch.until(lambda: watch.dead_lettered() == 1)

    retries = watch.logged("eventbus.redis.retry")
    assert [(r["log_level"], r["deliveries"]) for r in retries] == [("warning", 1), ("warning", 2)]
    assert all(r["event_id"] == "e1" and r["entry_id"] == entry_id for r in retries)
    [dead] = watch.logged("eventbus.redis.dead_lettered")
    assert dead["log_level"] == "error"
    assert dead["entry_id"] == entry_id
    assert dead["event_id"] == "e1"
    assert dead["event_name"] == "order.placed"
    assert dead["deliveries"] == 3
    assert dead["dead_letter"] == DEAD


# ---------------------------------------------------------------- crashed consumers


async def test_entries_left_pending_by_a_crashed_consumer_are_claimed_after_min_idle(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    await add(redis_client, "e1", "e2")
    await redis_client.xreadgroup("g", "dead", {STREAM: ">"}, count=10)  # and never acked
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, consumer="live", min_idle=0.2):
        await watch.until(lambda: watch.acked() == 2)

    assert ids(watch.handled) == ["e1", "e2"]
    assert await pending(redis_client) == 0
    claims = watch.logged("eventbus.redis.claimed")
    assert sum(claim["count"] for claim in claims) == 2
    assert all(c["log_level"] == "warning" and c["consumer"] == "live" for c in claims)


async def test_claimed_entry_started_max_deliveries_times_is_dead_lettered(
    redis_client: Redis, watch: Watch
) -> None:
    """A claimed entry on which handlers started max_deliveries times (their consumers
    crashed each time) is dead-lettered without running again."""
    await create_group(redis_client)
    [entry_id] = await add(redis_client, "e1")
    # Two consumers ran a handler on it and crashed: two attempts, never acknowledged.
    await redis_client.xreadgroup("g", "crashed-1", {STREAM: ">"}, count=10)
    await redis_client.xclaim(STREAM, "g", "crashed-2", 0, [entry_id])
    await redis_client.hset(ATTEMPTS, entry_id, 2)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, consumer="live", min_idle=0.2, max_deliveries=2):
        await watch.until(lambda: watch.dead_lettered() == 1)

    assert watch.handled == []
    [dead] = await stream_entries(redis_client, DEAD)
    assert dead["deliveries"] == "2"
    [error] = json.loads(dead["errors"])
    assert error["handler"] is None
    assert "a handler started on it 2 times" in error["message"]
    assert await pending(redis_client) == 0
    assert await redis_client.hlen(ATTEMPTS) == 0


async def test_claimed_entry_no_handler_started_on_runs_however_often_it_was_delivered(
    redis_client: Redis, watch: Watch
) -> None:
    """Deliveries to consumers that crashed before starting a handler on the entry (it
    waited in their batch) do not count towards max_deliveries."""
    await create_group(redis_client)
    [entry_id] = await add(redis_client, "e1")
    await redis_client.xreadgroup("g", "crashed-1", {STREAM: ">"}, count=10)
    for crashed in ("crashed-2", "crashed-3"):
        await redis_client.xclaim(STREAM, "g", crashed, 0, [entry_id])
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, consumer="live", min_idle=0.2, max_deliveries=2):
        await watch.until(lambda: watch.acked() == 1)

    assert ids(watch.handled) == ["e1"]
    assert await redis_client.xlen(DEAD) == 0
    assert await redis_client.hlen(ATTEMPTS) == 0


# ---------------------------------------------------------------- restarts


async def test_restarted_bridge_handles_exactly_the_entries_added_while_it_was_stopped(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    before, after = EventBus("before"), EventBus("after")
    before.on("order.placed", watch.record)
    after.on("order.placed", watch.record)
    async with consumer(before, redis_client):
        await add(redis_client, "e1")
        await watch.until(lambda: watch.acked() == 1)

    await add(redis_client, "e2", "e3")  # nobody is reading

    async with consumer(after, redis_client):
        await watch.until(lambda: watch.acked() == 3)
        assert await pending(redis_client) == 0

    assert ids(watch.handled) == ["e1", "e2", "e3"]


async def test_own_pending_entries_are_handled_first_on_start(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    await add(redis_client, "p1", "p2")
    # The previous run of consumer c1 received them and stopped before acknowledging.
    await redis_client.xreadgroup("g", "c1", {STREAM: ">"}, count=10)
    await add(redis_client, "n3")
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, consumer="c1"):  # min_idle 30 s: nothing claimed
        await watch.until(lambda: watch.acked() == 3)
        assert await pending(redis_client) == 0

    assert ids(watch.handled) == ["p1", "p2", "n3"]


# ---------------------------------------------------------------- stop()


async def test_stop_while_blocked_in_read_returns_without_waiting_for_the_block(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, block=600, min_idle=600) as bridge:
        await add(redis_client, "e1")
        await watch.until(lambda: watch.acked() == 1)
        # The bridge has gone back to XREADGROUP, which blocks for 300 s (until the next
        # claim, due in min_idle / 2), far beyond the guard: stop() must not wait for it.
        await asyncio.wait_for(bridge.stop(), WAIT)
        assert not bridge.running
        assert watch.logged("eventbus.redis.stopped")


async def test_stop_while_a_handler_runs_lets_it_finish_and_acknowledges_its_entry(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    gate = Gate()
    bus.on("order.placed", gate)
    async with consumer(bus, redis_client) as bridge:
        await add(redis_client, "e1")
        await gate.wait_started()
        stopping = asyncio.create_task(bridge.stop())
        await asyncio.sleep(0)  # a yield, not a wait: stop() starts and waits for the handler
        assert not stopping.done()
        gate.release.set()
        await asyncio.wait_for(stopping, WAIT)
        stats = await bridge.stats()

    assert gate.finished == ["e1"]  # not cancelled
    assert stats.acked == 1
    assert await pending(redis_client) == 0


async def test_stop_leaves_entries_waiting_for_a_retry_pending(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    runs: list[str] = []
    bus.on("order.placed", failing(runs))
    async with consumer(bus, redis_client, retry_delay=30, min_idle=60) as bridge:
        [entry_id] = await add(redis_client, "e1")
        await watch.until(lambda: bool(watch.logged("eventbus.redis.retry")))
    stats = await bridge.stats()

    assert runs == ["e1"]
    assert await pending_entries(redis_client) == [(entry_id, "c1", 1)]
    assert await redis_client.xlen(DEAD) == 0
    assert stats.retried == 1
    assert stats.dead_lettered == 0


async def test_stop_twice_or_before_start_is_harmless(redis_client: Redis, watch: Watch) -> None:
    await create_group(redis_client)
    bridge = consumer(EventBus("b"), redis_client)
    await bridge.stop()
    await bridge.start()
    assert bridge.running
    await bridge.stop()
    await bridge.stop()

    assert not bridge.running
    assert len(watch.logged("eventbus.redis.stopped")) == 1


async def test_stop_timeout_cancels_an_overrunning_handler(
    redis_client: Redis, watch: Watch
) -> None:
    """stop()'s timeout cancels an overrunning handler and leaves its entry pending."""
    await create_group(redis_client)
    bus = EventBus("b")
    started = asyncio.Event()
    cancelled: list[str] = []

    @bus.on("order.placed")
    async def stuck(event: Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(event.id)
            raise

    async with consumer(bus, redis_client) as bridge:
        [entry_id] = await add(redis_client, "e1")
        await asyncio.wait_for(started.wait(), WAIT)
        await bridge.stop(timeout=0.05)
        assert not bridge.running

    assert cancelled == ["e1"]
    assert await pending_entries(redis_client) == [(entry_id, "c1", 1)]


# ---------------------------------------------------------------- dedup_window


async def test_same_event_id_added_twice_is_handled_once_with_a_dedup_window(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, dedup_window=60) as bridge:
        _, second = await add(redis_client, "e1", "e1")  # a producer's retry
        await watch.until(lambda: watch.acked() == 2)
        stats = await bridge.stats()

    assert ids(watch.handled) == ["e1"]
    assert stats.duplicates == 1
    assert stats.acked == 2
    assert stats.pending == 0
    [duplicate] = watch.logged("eventbus.redis.duplicate")
    assert duplicate["log_level"] == "info"
    assert duplicate["event_id"] == "e1"
    assert duplicate["entry_id"] == second


async def test_same_event_id_added_twice_is_handled_twice_without_a_dedup_window(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client) as bridge:
        await add(redis_client, "e1", "e1")
        await watch.until(lambda: watch.acked() == 2)
        stats = await bridge.stats()

    assert ids(watch.handled) == ["e1", "e1"]
    assert stats.duplicates == 0
    assert await redis_client.keys("*handled*") == []


async def test_handled_event_id_is_remembered_for_the_dedup_window(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, dedup_window=60):
        await add(redis_client, "e1")
        await watch.until(lambda: watch.acked() == 1)

    ttl = await redis_client.ttl(f"{{{STREAM}}}:g:handled:e1")  # in the stream's hash slot
    assert 55 <= ttl <= 60


async def test_failed_event_is_not_remembered_as_handled(redis_client: Redis, watch: Watch) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    runs: list[str] = []
    bus.on("order.placed", failing(runs, failures=1))
    async with consumer(bus, redis_client, dedup_window=60) as bridge:
        await add(redis_client, "e1")
        await watch.until(lambda: watch.acked() == 1)
        stats = await bridge.stats()

    assert runs == ["e1", "e1"]  # the retry is not taken for a duplicate
    assert stats.duplicates == 0


# ---------------------------------------------------------------- stats() and a closed bus


async def test_stats_report_the_groups_pending_entries_and_lag(
    redis_client: Redis, watch: Watch
) -> None:
    info = await redis_client.info("server")
    lag_known = int(str(info["redis_version"]).split(".")[0]) >= 7
    await create_group(redis_client)
    await add(redis_client, "e1", "e2", "e3")
    bus = EventBus("b")
    gate = Gate()
    bus.on("order.placed", gate)
    async with consumer(bus, redis_client, batch=1) as bridge:
        await gate.wait_started()
        holding = await bridge.stats()
        gate.release.set()
        await watch.until(lambda: watch.acked() == 3)
        done = await bridge.stats()

    assert holding.pending == 1  # e1, in hand
    assert done.pending == 0
    if lag_known:
        assert holding.lag == 2  # e2 and e3, not delivered yet
        assert done.lag == 0
    assert (done.consumed, done.acked) == (3, 3)


async def test_bus_closed_while_consuming_stops_the_consumer(
    redis_client: Redis, watch: Watch
) -> None:
    """A bus closed while consuming stops the consumer and leaves the entry pending."""
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client) as bridge:
        await bus.aclose()
        [entry_id] = await add(redis_client, "e1")
        await watch.until(lambda: bool(watch.logged("eventbus.redis.bus_closed")))
        stats = await bridge.stats()

    assert watch.handled == []
    assert watch.logged("eventbus.redis.bus_closed")[0]["log_level"] == "warning"
    assert await pending_entries(redis_client) == [(entry_id, "c1", 1)]
    assert stats.acked == 0
    assert stats.dead_lettered == 0
