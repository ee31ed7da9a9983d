"""RedisBridge, robustness: a dead letter that cannot be written, slow batches and other
consumers, a batch cut short by an error, restarts with a retry waiting, stop() giving up, the
writer while stopping with the server gone, and the checks and logs that go with them — against
a real redis-server.

Tests never sleep to wait: they wait for a handler call or a log entry (``Watch``), with a
60-second guard (``WAIT``). Handlers may sleep: that is their workload.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from typing import Any

import pytest
import redis
from bridge_helpers import (
    DEAD,
    STREAM,
    WAIT,
    ClientFactory,
    Watch,
    add,
    consumer,
    create_group,
    entry,
    failing,
    ids,
    pending_ids,
    stream_entries,
)
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge
from eventbus.redis.testing import RedisServer

# ---------------------------------------------------------------- helpers


def fail_first_transaction(
    client: Redis, monkeypatch: pytest.MonkeyPatch, failed: list[bool]
) -> None:
    """Make the client's first dedup acknowledgement (the script that remembers the first
    handled event ids and acknowledges their entries, atomically) raise ConnectionError, as
    if the server went away; later ones go through."""
    original = client.evalsha

    async def evalsha(*args: Any) -> Any:
        if not failed:
            failed.append(True)
            raise redis.ConnectionError("connection lost (test)")
        return await original(*args)

    monkeypatch.setattr(client, "evalsha", evalsha)


# ---------------------------------------------------------------- dead letters


async def test_unwritable_dead_letter_leaves_the_entry_pending(
    redis_client: Redis, watch: Watch
) -> None:
    """An entry whose dead letter cannot be written stays pending and is not counted."""
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


async def test_deferred_ack_still_remembers_the_event_as_handled(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event whose acknowledgement was deferred is still remembered as handled."""
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


async def test_stop_timeout_on_a_hanging_handler_acks_earlier_entries(
    redis_client: Redis, watch: Watch
) -> None:
    """stop() timing out on a hanging handler still acknowledges the earlier entries."""
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


# ---------------------------------------------------------------- second review


async def test_stopping_sends_what_handlers_emit_while_finishing_their_batch(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    xadd: Any = redis_client.xadd
    await xadd(STREAM, entry("sale.closed", id="s-1"))
    bus = EventBus("b")
    waiting, release = asyncio.Event(), asyncio.Event()

    @bus.on("sale.closed")
    async def book(event: Event) -> None:
        watch.record(event)
        waiting.set()
        await release.wait()
        await bus.emit("sale.booked", sale=event.id)

    bridge = consumer(bus, redis_client, forward=["sale.*"])
    async with bridge:
        await asyncio.wait_for(waiting.wait(), WAIT)
        stopping = asyncio.create_task(bridge.stop())
        # Runs after stop() reached its first wait (its task step was scheduled first).
        asyncio.get_running_loop().call_soon(release.set)
        await asyncio.wait_for(stopping, WAIT)
        assert not bridge.running

    assert ids(watch.handled) == ["s-1"]
    assert await pending_ids(redis_client) == []  # the sale.closed entry is acknowledged
    closed, booked = await stream_entries(redis_client)
    assert closed["name"] == "sale.closed"
    assert booked["name"] == "sale.booked"
    assert booked["parent"] == "s-1"
    assert booked["origin"] == "g"
    assert json.loads(booked["payload"]) == {"sale": "s-1"}
    assert watch.logged("eventbus.redis.not_forwarded") == []


async def test_too_deeply_nested_payload_is_dead_lettered(
    redis_client: Redis, watch: Watch
) -> None:
    """An entry whose payload nests too deep is dead-lettered, and the next one handled."""
    await create_group(redis_client)
    xadd: Any = redis_client.xadd
    deep = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError
    poison_id = (await xadd(STREAM, entry(id="poison", payload=deep))).decode()
    await add(redis_client, "e1")  # behind it, in the same batch
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    async with consumer(bus, redis_client, max_deliveries=5, min_idle=30):
        await watch.until(lambda: watch.dead_lettered() == 1 and watch.acked() == 1)

    assert ids(watch.handled) == ["e1"]  # once; the poison entry never reached a handler
    assert await pending_ids(redis_client) == []
    [dead] = await stream_entries(redis_client, DEAD)
    assert dead["entry_id"] == poison_id
    assert dead["deliveries"] == "1"  # at once, as a bad entry: no retries
    assert dead["payload"] == deep
    [error] = json.loads(dead["errors"])
    assert error["type"] == "BadEntry"
    assert "malformed" in error["message"]
    assert watch.logged("eventbus.redis.retry") == []
    assert watch.logged("eventbus.redis.error") == []


async def test_stop_returns_within_its_timeout_when_the_server_hangs(
    own_redis_server: RedisServer, watch: Watch
) -> None:
    """The server is stopped (SIGSTOP) and the client has no socket timeout, so a stop()
    that ignored its timeout would never return: returning at all (before the guard) is the
    proof, with no clock involved."""
    pid = own_redis_server.pid
    assert pid is not None
    # No socket timeout: a command to a hung server waits for as long as it hangs.
    client = Redis.from_url(own_redis_server.url, socket_timeout=None)
    try:
        await create_group(client)
        await add(client, "e1", "e2")  # one batch: e1 succeeds, is acknowledged at its end
        bus = EventBus("b")
        running = asyncio.Event()

        @bus.on("order.placed")
        async def handle(event: Event) -> None:
            watch.record(event)
            if event.id == "e2":
                running.set()
                await asyncio.Event().wait()

        bridge = consumer(bus, client, min_idle=30)
        await bridge.start()
        try:
            await asyncio.wait_for(running.wait(), WAIT)
            os.kill(pid, signal.SIGSTOP)
            await asyncio.wait_for(bridge.stop(timeout=1), WAIT)
        finally:
            os.kill(pid, signal.SIGCONT)
            await bridge.stop()
    finally:
        await client.aclose()

    assert not bridge.running
    assert ids(watch.handled) == ["e1", "e2"]
    [not_acked] = watch.logged("eventbus.redis.not_acked")
    assert not_acked["count"] == 1  # e1: handled, its acknowledgement never answered
    assert len(watch.logged("eventbus.redis.stopped")) == 1


async def test_a_handler_running_longer_than_min_idle_keeps_its_entry(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)

    async def slow(event: Event) -> None:
        watch.record(event)
        await asyncio.sleep(1.5)  # the workload: longer than min_idle

    first, second = EventBus("first"), EventBus("second")
    first.on("order.placed", slow)
    second.on("order.placed", slow)
    options: dict[str, Any] = {"min_idle": 0.6, "retry_delay": 0.05}
    async with consumer(first, redis_client, consumer="a", **options):
        await add(redis_client, "e1")
        await watch.until(lambda: bool(watch.handled))  # "a" holds it
        async with consumer(second, redis_client, consumer="b", **options):
            await watch.until(lambda: watch.acked() >= 1)
            assert await pending_ids(redis_client) == []

    assert ids(watch.handled) == ["e1"]  # exactly once overall
    assert watch.logged("eventbus.redis.claimed") == []
    assert [log["consumer"] for log in watch.logged("eventbus.redis.acked")] == ["a"]


async def test_restarting_the_bridge_with_a_retry_waiting_handles_the_retry_promptly(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    failures = {"e1": 1}

    bus = EventBus("b")

    @bus.on("order.placed")
    async def handle(event: Event) -> None:
        watch.record(event)
        if failures.get(event.id):
            failures[event.id] -= 1
            raise ValueError(f"cannot handle {event.id} yet")
        if event.id == "e2":
            await asyncio.sleep(0.15)  # the workload: stop() waits for it, the retry not due

    bridge = consumer(bus, redis_client, retry_delay=0.3, min_idle=30)
    async with bridge:
        [e1, _] = await add(redis_client, "e1", "e2")  # one batch
        await watch.until(lambda: bool(watch.logged("eventbus.redis.retry")))
    assert await pending_ids(redis_client) == [e1]  # failed; its retry due 0.3 s after

    async with bridge:  # the same object: it still knows e1 waits for its retry
        await watch.until(lambda: ids(watch.handled).count("e1") == 2)
        await watch.until(lambda: watch.acked() == 2)

    assert ids(watch.handled) == ["e1", "e2", "e1"]
    assert await pending_ids(redis_client) == []
    assert watch.logged("eventbus.redis.claimed") == []


async def test_a_dead_letter_whose_acknowledgement_failed_is_written_once(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_group(redis_client)
    xadd: Any = redis_client.xadd
    bad_id = (await xadd(STREAM, entry(id="bad", v="99"))).decode()  # dead-lettered at once
    failed: list[str] = []
    original = redis_client.xack

    async def xack(name: str, group: str, *entry_ids: str) -> Any:
        if bad_id in entry_ids and not failed:
            failed.append(bad_id)
            raise redis.ConnectionError("connection lost (test)")
        return await original(name, group, *entry_ids)

    monkeypatch.setattr(redis_client, "xack", xack)
    bridge = consumer(EventBus("b"), redis_client, min_idle=30)
    async with bridge:
        await watch.until(lambda: bool(watch.logged("eventbus.redis.connection_lost")))
        deadline = time.monotonic() + WAIT
        while await pending_ids(redis_client):  # each poll is a round trip to the server
            assert time.monotonic() < deadline, "the entry was never acknowledged"
    stats = await bridge.stats()

    assert failed == [bad_id]
    dead_letters = await stream_entries(redis_client, DEAD)
    assert [dead["entry_id"] for dead in dead_letters] == [bad_id]  # written once
    assert dead_letters[0]["deliveries"] == "1"
    # Counted and logged as any dead letter is (its acknowledgement was only late).
    assert (stats.dead_lettered, stats.acked) == (1, 0)
    assert len(watch.logged("eventbus.redis.dead_lettered", entry_id=bad_id)) == 1


async def test_start_recreates_a_group_deleted_while_the_bridge_was_stopped(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bus.on("order.placed", watch.record)
    bridge = consumer(bus, redis_client)
    async with bridge:
        await add(redis_client, "e1")
        await watch.until(lambda: watch.acked() == 1)
    assert await redis_client.xgroup_destroy(STREAM, "g") == 1

    await bridge.start()
    try:
        groups: Any = await redis_client.xinfo_groups(STREAM)  # before the bridge reads
        assert [group["name"] for group in groups] == [b"g"]
        await add(redis_client, "e2")
        await watch.until(lambda: watch.acked() == 2)
    finally:
        await bridge.stop()

    assert ids(watch.handled) == ["e1", "e2"]  # e1, older than the new group, not again
    assert await pending_ids(redis_client) == []
    assert watch.logged("eventbus.redis.group_missing") == []


async def test_a_received_event_forwarded_by_another_bridge_carries_its_remote_chain(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    xadd: Any = redis_client.xadd
    fields = entry("order.paid", id="paid-1", depth="1", chain="order.placed", parent="p-1")
    await xadd(STREAM, fields)
    bus = EventBus("b")
    bus.on("order.paid", watch.record)
    async with (
        consumer(bus, redis_client),
        RedisBridge(bus, redis_client, stream="ledger", forward=["order.paid"]) as ledger,
    ):
        await watch.until(lambda: bool(watch.handled))
        await asyncio.wait_for(ledger.flush(), WAIT)

    [forwarded] = await stream_entries(redis_client, "ledger")
    assert forwarded["name"] == "order.paid"
    assert forwarded["id"] == "paid-1"
    assert forwarded["chain"] == "order.placed"
    assert forwarded["parent"] == "p-1"
    assert forwarded["depth"] == "1"


async def test_two_concurrent_stops_both_return_and_stopped_is_logged_once(
    redis_client: Redis, watch: Watch
) -> None:
    await create_group(redis_client)
    bus = EventBus("b")
    bridge = consumer(bus, redis_client, forward=["sale.*"])
    await bridge.start()
    try:
        await asyncio.wait_for(asyncio.gather(bridge.stop(), bridge.stop()), WAIT)
        assert not bridge.running
    finally:
        await bridge.stop()

    assert len(watch.logged("eventbus.redis.stopped")) == 1
    assert len(watch.logged("eventbus.redis.started")) == 1


async def test_cancelling_inside_async_with_stops_and_loses_nothing(
    redis_client: Redis,
) -> None:
    """Cancelling the task inside `async with` stops the bridge and loses nothing."""
    await create_group(redis_client)
    bus = EventBus("b")
    bridge = consumer(bus, redis_client, forward=["order.*"])
    inside = asyncio.Event()

    async def serve() -> None:
        async with bridge:
            await bus.emit("order.sent", total=1)  # queued for the stream
            inside.set()
            await asyncio.Event().wait()  # until cancelled, as a server's lifespan is

    task = asyncio.create_task(serve())
    await asyncio.wait_for(inside.wait(), WAIT)
    task.cancel()
    await asyncio.wait((task,), timeout=WAIT)

    assert task.cancelled()
    assert not bridge.running
    assert [entry["name"] for entry in await stream_entries(redis_client)] == ["order.sent"]
