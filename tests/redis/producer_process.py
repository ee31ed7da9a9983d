"""The producer process of the producer fault test (``test_fault_producer.py``): a bus with a
``RedisBridge(confirm=True)`` and ``--emitters`` tasks emitting ``job.made`` flat out, until
the test SIGKILLs it.

    python tests/redis/producer_process.py --url redis://127.0.0.1:6379/0 --stream jobs

Reports on stdout, unbuffered, one line each: ``s`` before an emission starts, ``c <event
id>`` once its ``await bus.emit(...)`` returned (Redis has the entry), ``f <error>`` when it
raised. Logs (structlog, warnings and up) go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import structlog
from redis.asyncio import Redis

from eventbus import EventBus
from eventbus.redis import RedisBridge


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--emitters", type=int, default=20)
    return parser.parse_args(argv)


def report(line: str) -> None:
    os.write(1, f"{line}\n".encode())  # unbuffered: what was written survives a SIGKILL


async def emitter(bus: EventBus, number: int) -> None:
    sequence = 0
    while True:
        report("s")
        try:
            made = await bus.emit("job.made", emitter=number, seq=sequence)
        except Exception as error:
            report(f"f {type(error).__name__}")
        else:
            report(f"c {made.event.id}")
        sequence += 1


async def main(arguments: argparse.Namespace) -> None:
    bus = EventBus("producer")
    client = Redis.from_url(arguments.url)
    async with RedisBridge(bus, client, stream=arguments.stream, forward="job.*", confirm=True):
        await asyncio.gather(*(emitter(bus, number) for number in range(arguments.emitters)))


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(parse_arguments()))
