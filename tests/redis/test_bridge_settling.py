"""RedisBridge, settling: an entry is acknowledged only once what its handlers forwarded is
in the stream, and a lost connection does not move a scheduled retry to ``min_idle``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from bridge_helpers import STREAM, WAIT, Watch, add, consumer, create_group, failing, pending
from redis.asyncio import Redis

from eventbus import Event, EventBus


def fail_pipelines_while(
    client: Redis, monkeypatch: pytest.MonkeyPatch, closed: asyncio.Event, failures: list[str]
) -> None:
    """Make every non-transactional pipeline of the client (the outbox's XADDs, the
    consumer's XPENDING look-ups) raise ConnectionError while ``closed`` is set."""
    original = client.pipeline

    def pipeline(transaction: bool = True, shard_hint: str | None = None) -> Any:
        pipe = original(transaction=transaction, shard_hint=shard_hint)
        if not transaction:
            execute = pipe.execute

            async def maybe_lost(raise_on_error: bool = True) -> list[Any]:
                if closed.is_set():
                    failures.append("lost")
                    raise redis.ConnectionError("connection lost (test)")
                return await execute(raise_on_error)

            pipe.execute = maybe_lost  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(client, "pipeline", pipeline)


async def test_entry_is_acknowledged_only_once_its_handlers_forwarded_events_are_in_the_stream(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_group(redis_client)
    bus = EventBus("ledger")

    async def write(event: Event) -> None:
        await bus.emit("ledger.written", order=event["total"])

    bus.on("order.placed", write)
    closed, failures = asyncio.Event(), []
    closed.set()
    fail_pipelines_while(redis_client, monkeypatch, closed, failures)
    async with consumer(bus, redis_client, forward="ledger.*") as bridge:
        await add(redis_client, "e1")
        # The follow-up cannot be written (the writer's failures are logged once, counted).
        await watch.until(lambda: bool(watch.logged("eventbus.redis.connection_lost")))
        async with asyncio.timeout(WAIT):
            while len(failures) < 3:
                await asyncio.sleep(0)
        assert await pending(redis_client) == 1
        assert await redis_client.xlen(STREAM) == 1

        closed.clear()
        await watch.until(lambda: watch.acked() == 1)
        assert await redis_client.xlen(STREAM) == 2  # the follow-up came first
        stats = await bridge.stats()
    assert stats.forwarded == 1


async def test_connection_lost_while_claiming_a_retry_keeps_it_at_retry_delay(
    redis_client: Redis, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With min_idle far beyond the test's hang guard, only a retry kept at retry_delay
    runs the entry again in time."""
    await create_group(redis_client)
    bus = EventBus("b")
    runs: list[str] = []
    handler = failing(runs, failures=1)
    closed, failures = asyncio.Event(), []

    def flaky(event: Event) -> None:
        try:
            handler(event)
        except ValueError:
            closed.set()  # the retry's claim meets a lost connection
            raise

    bus.on("order.placed", flaky)
    fail_pipelines_while(redis_client, monkeypatch, closed, failures)
    async with consumer(bus, redis_client, retry_delay=0.05, min_idle=600):
        await add(redis_client, "e1")
        await watch.until(lambda: bool(watch.logged("eventbus.redis.connection_lost")))
        closed.clear()
        await watch.until(lambda: watch.acked() == 1)

    assert runs == ["e1", "e1"]
