"""The accounting worker: books every closed sale it receives from the web
process, and answers with ``ledger.written``, which the bridge sends back.

Run it beside ``web.py`` (see the README's "Several processes: the Redis
bridge"); it exits after booking ``SALES`` sales. ``REDIS_URL`` picks the
server (default ``redis://localhost:6379/0``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os

import structlog
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge

STREAM = "shop:events"
SALES = 3


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    bus = EventBus("worker")
    booked = asyncio.Event()
    entry_ids = itertools.count(1)
    count = 0

    @bus.on("sale.closed")
    async def book_sale(event: Event) -> None:
        nonlocal count
        entry_id = next(entry_ids)
        print(f"worker: booked sale {event.id} ({event['total_cents']} cents) as entry {entry_id}")
        await bus.emit("ledger.written", entry_id=entry_id, session_id=event["session_id"])
        count += 1
        if count == SALES:
            booked.set()

    client = Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    async with (
        client,
        RedisBridge(
            bus,
            client,
            stream=STREAM,
            group="accounting",
            consumer="worker-1",
            forward=["ledger.*"],
            start_at="0",
            block=0.2,
        ),
    ):
        await asyncio.wait_for(booked.wait(), timeout=60)
    await bus.aclose()


if __name__ == "__main__":
    asyncio.run(main())
