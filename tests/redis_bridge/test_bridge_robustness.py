"""RedisBridge, robustness: a dead letter that cannot be written, slow batches and other
consumers, a batch cut short by an error, restarts with a retry waiting, stop() giving up, the
writer while stopping with the server gone, and the checks and logs that go with them — against
a real redis-server.

Tests never sleep to wait: they wait for a handler call or a log entry (``Watch``), with a
5-second guard. Handlers may sleep: that is their workload.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge
from redis_bridge.bridge_helpers import (
    DEAD,
    STREAM,
    WAIT,
    ClientFactory,
    Watch,
    add,
    consumer,
    create_group,
    failing,
    ids,
    new_client_fixture,  # noqa: F401 - the fixture `new_client`
    pending_ids,
    watch_fixture,  # noqa: F401 - the fixture `watch`
)
from redis_bridge.server import RedisServer

# ---------------------------------------------------------------- helpers


def fail_first_transaction(
    client: Redis, monkeypatch: pytest.MonkeyPatch, failed: list[bool]
) -> None:
    """Make the client's first transaction (the dedup SET + XACK of the first entry handled)
    raise ConnectionError, as if the server went away; later ones go through."""
    original = client.pipeline

    def pipeline(transaction: bool = True, shard_hint: str | None = None) -> Any:
        pipe = original(transaction=transaction, shard_hint=shard_hint)
        if transaction and not failed:

            async def lost(raise_on_error: bool = True) -> list[Any]:
                failed.append(True)
                raise redis.ConnectionError("connection lost (test)")

            pipe.execute = lost
        return pipe

    monkeypatch.setattr(client, "pipeline", pipeline)


# ---------------------------------------------------------------- dead letters


async def test_entry_whose_dead_letter_cannot_be_written_stays_pending_and_is_not_counted(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    await redis_client.set(DEAD, "x")  # the dead-letter key is not a stream: XADD fails
    bus = EventBus("b")
    runs: list[str] = []
    bus.on("order.placed", failing(runs))
    async with consumer(bus, redis_client, max_deliveries=2, min_idle=30) as bridge:
        [entry_id] = await add(redis_client, "e1")
        await watch.until(lambda: bool(watch.logged("eventbus.redis.error")))
    stats = await bridge.stats()

    assert runs == ["e1", "e1"]  # max_deliveries, then the dead letter fails
    assert await pending_ids(redis_client) == [entry_id]  # not acknowledged: not lost
    assert stats.dead_lettered == 0
    assert stats.acked == 0
    assert watch.logged("eventbus.redis.dead_lettered") == []
    error = watch.logged("eventbus.redis.error")[0]
    assert error["log_level"] == "error"
    assert isinstance(error["exc_info"], redis.ResponseError)
    assert "WRONGTYPE" in str(error["exc_info"])
    assert await redis_client.get(DEAD) == b"x"


# ---------------------------------------------------------------- slow batches


@pytest.mark.parametrize("dedup_window", [None, 60])
async def test_slow_batch_keeps_its_lease_so_another_consumer_runs_none_of_it_again(
    redis_client: Redis, watch: Watch, dedup_window: float | None
) -> None:
    await create_group(redis_client)
    event_ids = [f"e{n}" for n in range(10)]
    await add(redis_client, *event_ids)  # one batch for whoever reads first

    async def slow(event: Event) -> None:
        watch.record(event)
        await asyncio.sleep(0.3)  # the workload: the batch takes 3 s, min_idle is 1 s

    first, second = EventBus("first"), EventBus("second")
    first.on("order.placed", slow)
    second.on("order.placed", slow)
    # Without a dedup window the batch is acknowledged at its end; with one, entry by entry.
    options: dict[str, Any] = {"batch": 10, "min_idle": 1.0, "dedup_window": dedup_window}
    async with consumer(first, redis_client, consumer="a", **options):
        await watch.until(lambda: bool(watch.handled))  # "a" holds all ten
        async with consumer(second, redis_client, consumer="b", **options):
            await watch.until(lambda: watch.acked() >= 10)
            assert await pending_ids(redis_client) == []

    runs = Counter(ids(watch.handled))
    assert runs == Counter(event_ids)  # each exactly once
    assert watch.logged("eventbus.redis.claimed") == []


# ---------------------------------------------------------------- a batch cut short


async def test_rest_of_a_batch_cut_short_by_a_failed_ack_is_handled_at_once_and_once(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_group(redis_client)
    await add(redis_client, "e1", "e2", "e3")  # one batch
    failed: list[bool] = []
    fail_first_transaction(redis_client, monkeypatch, failed)  # the SET + XACK of e1
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, dedup_window=60, min_idle=30, retry_delay=0.05):
        await watch.until(lambda: len(watch.handled) == 3)  # well before min_idle (30 s)
        await watch.until(lambda: watch.acked() == 3)
        assert await pending_ids(redis_client) == []  # e1 too, once the server answered

    assert failed == [True]
    assert sorted(ids(watch.handled)) == ["e1", "e2", "e3"]  # none twice


async def test_rest_of_a_batch_cut_short_is_handled_in_stream_order(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_group(redis_client)
    await add(redis_client, "e1", "e2", "e3", "e4")  # one batch
    failed: list[bool] = []
    fail_first_transaction(redis_client, monkeypatch, failed)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, dedup_window=60, min_idle=30, retry_delay=0.05):
        await watch.until(lambda: watch.acked() == 4)

    assert failed == [True]
    assert ids(watch.handled) == ["e1", "e2", "e3", "e4"]


async def test_an_event_whose_acknowledgement_was_deferred_is_still_remembered_as_handled(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_group(redis_client)
    await add(redis_client, "e1", "e2")
    failed: list[bool] = []
    fail_first_transaction(redis_client, monkeypatch, failed)  # the SET + XACK of e1
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, dedup_window=60, min_idle=30, retry_delay=0.05):
        await watch.until(lambda: watch.acked() == 2)
        await add(redis_client, "e1")  # a producer's resend of e1, inside the window
        await watch.until(lambda: len(watch.logged("eventbus.redis.duplicate")) == 1)

    assert failed == [True]
    assert ids(watch.handled) == ["e1", "e2"]


# ---------------------------------------------------------------- restarts


async def test_restart_with_a_retry_waiting_does_not_reread_the_history_in_a_loop(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    runs: list[str] = []
    bus.on("order.placed", failing(runs, failures=1))
    bridge = consumer(bus, redis_client, retry_delay=0.5, min_idle=30)
    async with bridge:
        [entry_id] = await add(redis_client, "e1")
        await watch.until(lambda: bool(watch.logged("eventbus.redis.retry")))
    assert await pending_ids(redis_client) == [entry_id]  # failed, its retry due in 0.5 s

    reads = 0
    original = redis_client.xreadgroup

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(redis_client, "xreadgroup", counting)
    async with bridge:  # the same bridge: it still knows the retry is due
        await watch.until(lambda: watch.acked() == 1)

    assert runs == ["e1", "e1"]
    assert await pending_ids(redis_client) == []
    assert 1 <= reads < 50  # reads that block until the retry, not a busy loop


# ---------------------------------------------------------------- stop()


async def test_stop_timing_out_on_a_hanging_handler_still_acknowledges_the_earlier_entries(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    entry_ids = await add(redis_client, "e1", "e2", "e3")  # one batch
    bus = EventBus("b")
    hanging = asyncio.Event()

    @bus.on("order.placed")
    async def handle(event: Event) -> None:
        watch.record(event)
        if event.id == "e3":
            hanging.set()
            await asyncio.Event().wait()

    async with consumer(bus, redis_client) as bridge:
        await asyncio.wait_for(hanging.wait(), WAIT)
        await bridge.stop(timeout=0.2)
        assert not bridge.running

    assert ids(watch.handled) == ["e1", "e2", "e3"]
    assert await pending_ids(redis_client) == [entry_ids[2]]  # only the hanging one


async def test_writer_keeps_backing_off_while_stopping_with_the_server_down(
    new_client: ClientFactory,
    own_redis_server: RedisServer,
    watch: Watch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = new_client()
    attempts = 0
    original = client.pipeline

    def counting(transaction: bool = True, shard_hint: str | None = None) -> Any:
        nonlocal attempts
        attempts += 1
        return original(transaction=transaction, shard_hint=shard_hint)

    monkeypatch.setattr(client, "pipeline", counting)
    bus = EventBus("b")
    async with RedisBridge(bus, client, stream=STREAM, forward=["order.placed"]) as bridge:
        own_redis_server.kill()
        await bus.emit("order.placed")
        await watch.until(lambda: bool(watch.logged("eventbus.redis.connection_lost")))
        before = attempts
        await bridge.stop(timeout=1)
        during_stop = attempts - before

    assert 1 <= during_stop <= 10  # backing off, not a tight loop (about 180 a second)
    [not_forwarded] = watch.logged("eventbus.redis.not_forwarded")
    assert not_forwarded["count"] == 1


# ---------------------------------------------------------------- logs and checks


async def test_consumed_is_logged_at_debug_with_the_count_of_each_batch(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    await add(redis_client, "e1", "e2", "e3")
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, batch=2):
        await watch.until(lambda: watch.acked() == 3)

    consumed = watch.logged("eventbus.redis.consumed")
    assert [(log["log_level"], log["count"]) for log in consumed] == [("debug", 2), ("debug", 1)]
    assert all(log["group"] == "g" and log["consumer"] == "c1" for log in consumed)


@pytest.mark.parametrize(("retry_delay", "min_idle"), [(1.0, 1.0), (2.0, 0.5)])
async def test_retry_delay_not_shorter_than_min_idle_is_refused_naming_both(
    redis_client: Redis, retry_delay: float, min_idle: float
) -> None:
    with pytest.raises(ValueError, match=r"retry_delay .*min_idle ") as refused:
        consumer(EventBus("b"), redis_client, retry_delay=retry_delay, min_idle=min_idle)

    assert f"({retry_delay} s)" in str(refused.value)
    assert f"({min_idle} s)" in str(refused.value)
