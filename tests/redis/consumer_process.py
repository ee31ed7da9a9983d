"""One consumer process of the kill test (``test_kill.py``): a bus, a ``RedisBridge`` in a
consumer group, and a ``job.run`` handler that records what it does in Redis.

    python tests/redis/consumer_process.py --url redis://127.0.0.1:6379/0 \\
        --stream jobs --group workers --consumer c1 [--victim-from 100]

Records (with a client of its own, not the bridge's), as lists in the same database:

* ``ready``: ``<consumer>`` once the bridge is started;
* ``started``: ``<consumer>:<event id>`` when the handler begins;
* ``handled``: ``<consumer>:<event id>``, the handler's last act, so only on success;
* ``blocked``: ``<consumer>:<event id>`` when this process became the victim (below).

With ``--victim-from K``, the first handler call in ANY of the processes for an event whose
``seq`` is at least K (``SET victim <consumer> NX`` decides which) records ``blocked`` and
then never returns: the test SIGKILLs that process in the middle of that handler. Whichever
process gets there first, some process always does, so the scenario is deterministic.

SIGTERM stops the bridge cleanly (``async with`` exit) and the process exits 0.
Logs (structlog, info and up) go to stderr, which the test sends to a file.
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


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--victim-from", type=int, default=None)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--block", type=float, default=0.05)
    parser.add_argument("--min-idle", type=float, default=1.0)
    parser.add_argument("--retry-delay", type=float, default=0.05)
    return parser.parse_args(argv)


async def run(options: argparse.Namespace) -> None:
    consumer = options.consumer
    bus = EventBus(f"worker-{consumer}")
    bridge_client = Redis.from_url(options.url)
    records = Redis.from_url(options.url)

    async def run_job(event: Event) -> None:
        record = f"{consumer}:{event.id}"
        await records.rpush("started", record)
        if (
            options.victim_from is not None
            and event["seq"] >= options.victim_from
            and await records.set("victim", consumer, nx=True)
        ):
            await records.rpush("blocked", record)
            await asyncio.Event().wait()  # killed here, in the middle of the handler
        await records.rpush("handled", record)

    bus.on("job.run", run_job)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with RedisBridge(
            bus,
            bridge_client,
            stream=options.stream,
            group=options.group,
            consumer=consumer,
            batch=options.batch,
            block=options.block,
            min_idle=options.min_idle,
            retry_delay=options.retry_delay,
        ):
            await records.rpush("ready", consumer)
            await stop.wait()
    finally:
        await bus.aclose()
        await records.aclose()
        await bridge_client.aclose()


def main() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    asyncio.run(run(parse_arguments()))


if __name__ == "__main__":
    main()
