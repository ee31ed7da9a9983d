"""RedisBridge, stream-only mode (``stream_only=True``): the handlers of forwarded events run
from the stream only, in every group including the emitter's, so a failure there is retried
and a crash is recovered, as in every other group; the default (the in-process short cut)
runs them in the emitting process and its group skips the entry."""

from __future__ import annotations

import pytest
from bridge_helpers import DEAD, STREAM, Watch, consumer, create_group, failing, flush, pending
from redis.asyncio import Redis

from eventbus import Event, EventBus


async def test_emitters_group_handler_failing_once_is_retried_from_the_stream(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("web")
    runs: list[str] = []
    bus.on("order.placed", failing(runs, failures=1))
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, forward="order.*", stream_only=True) as bridge:
        report = await bus.emit("order.placed", total=12)
        assert report.results == ()  # not run in-process: the stream delivers it
        assert runs == []
        await watch.until(lambda: watch.acked() == 1)
        stats = await bridge.stats()

    assert runs == [report.event.id, report.event.id]  # failed once, retried, succeeded
    assert stats.retried == 1
    assert stats.echoes == 0
    assert stats.pending == 0
    assert await redis_client.xlen(DEAD) == 0


async def test_handler_that_never_succeeds_in_the_emitters_group_is_dead_lettered(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("web")
    runs: list[str] = []
    bus.on("order.placed", failing(runs))
    async with consumer(bus, redis_client, forward="order.*", stream_only=True, max_deliveries=2):
        await bus.emit("order.placed", total=12)
        await watch.until(lambda: watch.dead_lettered() == 1)

    assert len(runs) == 2
    assert await pending(redis_client) == 0


async def test_events_emitted_by_a_stream_run_handler_go_through_the_stream_too(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("web")

    async def place(event: Event) -> None:
        await bus.emit("order.booked", order=event["order"])

    bus.on("order.placed", place)
    bus.on("order.booked", watch.record)
    async with consumer(bus, redis_client, forward="order.*", stream_only=True):
        await bus.emit("order.placed", order=7)
        await watch.until(lambda: len(watch.handled) == 1)
        await watch.until(lambda: watch.acked() == 2)

    assert watch.handled[0]["order"] == 7
    assert await redis_client.xlen(STREAM) == 2


async def test_handlers_run_in_process_again_once_the_bridge_stopped(redis_client: Redis) -> None:
    await create_group(redis_client)
    bus = EventBus("web")
    runs: list[str] = []
    bus.on("order.placed", failing(runs, failures=0))
    async with consumer(bus, redis_client, forward="order.*", stream_only=True) as bridge:
        await bus.emit("order.placed")
        await flush(bridge)
    report = await bus.emit("order.placed")
    assert report.event.id in runs


async def test_short_cut_runs_the_handlers_in_process_and_its_group_skips_the_entry(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("web")
    runs: list[str] = []
    bus.on("order.placed", failing(runs))
    async with consumer(bus, redis_client, forward="order.*") as bridge:
        report = await bus.emit("order.placed")
        assert runs == [report.event.id]  # ran in-process, failed: at most once
        assert not report.ok
        await watch.until(lambda: watch.acked() == 1)
        stats = await bridge.stats()

    assert runs == [report.event.id]  # not retried through the stream
    assert stats.echoes == 1


def test_stream_only_needs_a_group(redis_client: Redis) -> None:
    with pytest.raises(ValueError, match="stream_only=True needs a group"):
        consumer(EventBus("b"), redis_client, group=None, forward="order.*", stream_only=True)


def test_stream_only_must_be_a_bool(redis_client: Redis) -> None:
    with pytest.raises(TypeError, match="stream_only must be a bool, not str"):
        consumer(EventBus("b"), redis_client, forward="order.*", stream_only="yes")
