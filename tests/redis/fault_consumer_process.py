"""One consumer process of the consumer fault test (``test_fault_consumer.py``): a bus, a
``RedisBridge`` in stream-only mode in the group ``workers``, and a ``job.run`` handler that
records what it does in Redis.

    python tests/redis/fault_consumer_process.py --url redis://127.0.0.1:6379/0 --consumer c1

Records (with a client of its own), as lists in the same database: ``ready`` (``<consumer>``
once the bridge is started), ``handled`` (``<consumer>:<event id>``, the handler's last act,
so only on success) and ``blocked`` (``<consumer>:<event id>``). An event whose ``trap``
field is true blocks the first handler that runs it, in any process (``SET trap:<id> NX``
decides which): that handler records ``blocked`` and never returns, and the test SIGKILLs its
process. SIGTERM stops the bridge cleanly and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import structlog
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge

STREAM = "jobs"
GROUP = "workers"


def recording_handler(consumer: str, records: Redis, *, traps: bool = True) -> object:
    """The ``job.run`` handler every process of the group runs (the producer's too, without
    ``traps``: it cannot be killed)."""

    async def run_job(event: Event) -> None:
        record = f"{consumer}:{event.id}"
        if traps and event["trap"] and await records.set(f"trap:{event.id}", consumer, nx=True):
            await records.rpush("blocked", record)
            await asyncio.Event().wait()  # killed here, in the middle of the handler
        await asyncio.sleep(0)
        await records.rpush("handled", record)

    return run_job


async def run(url: str, consumer: str, min_idle: float) -> None:
    bus = EventBus(f"worker-{consumer}")
    bridge_client = Redis.from_url(url)
    records = Redis.from_url(url)
    bus.on("job.run", recording_handler(consumer, records))  # type: ignore[arg-type]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with RedisBridge(
            bus,
            bridge_client,
            stream=STREAM,
            group=GROUP,
            consumer=consumer,
            stream_only=True,
            batch=10,
            block=0.05,
            min_idle=min_idle,
            retry_delay=0.05,
        ):
            await records.rpush("ready", consumer)
            await stop.wait()
    finally:
        await bus.aclose()
        await records.aclose()
        await bridge_client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--min-idle", type=float, default=2.0)
    options = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    asyncio.run(run(options.url, options.consumer, options.min_idle))


if __name__ == "__main__":
    main()
