"""The web process: closes three till sessions, which emits ``sale.closed``.

It has no accounting code: the bridge forwards the sales to the stream, the
worker process books them, and its ``ledger.written`` answers come back
through the same stream, each one naming the sale it answers as its parent.
"""

from __future__ import annotations

import asyncio
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
    bus = EventBus("web")
    answers: asyncio.Queue[Event] = asyncio.Queue()
    bus.on("ledger.written", answers.put_nowait)

    client = Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    async with (
        client,
        RedisBridge(
            bus,
            client,
            stream=STREAM,
            group="web",
            consumer="web-1",
            forward=["sale.*"],
            block=0.2,
        ),
    ):
        sales = set()
        for session_id in range(1, SALES + 1):
            report = await bus.emit(
                "sale.closed", source="till", session_id=session_id, total_cents=1250 * session_id
            )
            sales.add(report.event.id)
            print(f"web: closed session {session_id}, emitted sale {report.event.id}")
        for _ in range(SALES):
            answer = await asyncio.wait_for(answers.get(), timeout=60)
            assert answer.parent_id in sales, answer
            print(f"web: ledger entry {answer['entry_id']} written for sale {answer.parent_id}")
    await bus.aclose()


if __name__ == "__main__":
    asyncio.run(main())
