"""The producer side of ``eventbus.redis.RedisBridge`` beside a raw redis-py producer.

Run from the repository root (the ``redis`` extra and a ``redis-server`` binary, as for
``benchmarks.redis_bridge``; ``python -m benchmarks.redis_bridge --producer`` runs this)::

    python -m benchmarks.redis_producer            # 20,000 events per trial, 5 rounds
    python -m benchmarks.redis_producer --quick    # a few seconds, rough numbers

One ``redis-server`` (a free port, no persistence) and this process, which produces; every
trial appends N entries of the payload ``{"sku": "SKU-12345", "qty": 3, "price": 9.5}`` to a
fresh stream, with the bridge's default approximate ``MAXLEN``:

* **raw pipelined XADD**: redis-py, entries of the bridge's own format (the same fields,
  already encoded), ``batch`` (100) ``XADD`` per pipeline, one pipeline after the other;
* **confirmed, C emitters**: an ``EventBus`` with ``RedisBridge(confirm=True)``; C tasks
  each ``await bus.emit(...)`` in a loop, every call returning once Redis has its entry;
* **asynchronous**: ``RedisBridge()`` (not confirmed), one task emitting N events (yielding
  once per batch), then ``await bridge.flush()``.

Figure: events/s = N / (time the last entry was confirmed - time the first emit began),
``time.perf_counter`` in this process. Rounds interleave the scenarios (reversed every other
round, after an untimed warm-up); medians over rounds. The issue's target: confirmed producer
with concurrent emitters >= 0.5x raw pipelined XADD.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import structlog
from redis.asyncio import Redis

from eventbus import EventBus
from eventbus.redis import RedisBridge
from eventbus.redis._entries import encode
from eventbus.redis.testing import RedisServer

EVENT: Final = "order.placed"
PAYLOAD: Final[dict[str, Any]] = {"sku": "SKU-12345", "qty": 3, "price": 9.5}
MAXLEN: Final = 100_000
BATCH: Final = 100
TARGET: Final = 0.5
_streams = itertools.count()

Trial = Callable[[Redis, int], Awaitable[float]]


def fresh_stream() -> str:
    return f"bench:{next(_streams)}"


async def raw_pipelined(client: Redis, count: int) -> float:
    """XADD ``count`` bridge-format entries, ``BATCH`` per pipeline; seconds taken."""
    stream = fresh_stream()
    template = encode((await EventBus("raw").emit(EVENT, **PAYLOAD)).event, (), "", stream)
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for index in range(first, min(first + BATCH, count)):
                fields = {**template, "id": f"{template['id']}{index}"}
                pipe.xadd(stream, fields, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
    return time.perf_counter() - started


def confirmed(emitters: int) -> Trial:
    async def trial(client: Redis, count: int) -> float:
        bus = EventBus("producer")
        async with RedisBridge(
            bus, client, stream=fresh_stream(), forward=EVENT, confirm=True, batch=BATCH
        ):
            shares = [
                count // emitters + (1 if i < count % emitters else 0) for i in range(emitters)
            ]

            async def emitter(share: int) -> None:
                for _ in range(share):
                    await bus.emit(EVENT, **PAYLOAD)

            started = time.perf_counter()
            await asyncio.gather(*(emitter(share) for share in shares))
            return time.perf_counter() - started

    return trial


async def asynchronous(client: Redis, count: int) -> float:
    bus = EventBus("producer")
    async with RedisBridge(
        bus, client, stream=fresh_stream(), forward=EVENT, batch=BATCH
    ) as bridge:
        started = time.perf_counter()
        for index in range(count):
            await bus.emit(EVENT, **PAYLOAD)
            if index % BATCH == BATCH - 1:
                await asyncio.sleep(0)  # let the writer run, as an app would
        await bridge.flush()
        return time.perf_counter() - started


SCENARIOS: Final[dict[str, Trial]] = {
    "raw redis-py, pipelined XADD (batch 100)": raw_pipelined,
    "bridge confirmed, 100 concurrent emitters": confirmed(100),
    "bridge confirmed, 200 concurrent emitters": confirmed(200),
    "bridge confirmed, 1 emitter (one round trip per emit)": confirmed(1),
    "bridge asynchronous (emit, then flush)": asynchronous,
}
RAW: Final = "raw redis-py, pipelined XADD (batch 100)"
HEADLINE: Final = "bridge confirmed, 100 concurrent emitters"


async def measure(
    url: str, events: int, rounds: int, log: Callable[[str], None]
) -> dict[str, float]:
    """Median events/s of each scenario over ``rounds`` interleaved rounds."""
    client = Redis.from_url(url)
    await client.ping()
    rates: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    try:
        for round_number in range(rounds + 1):  # round 0 warms up
            names = list(SCENARIOS)
            if round_number % 2:
                names.reverse()
            for name in names:
                count = (
                    events
                    if name != "bridge confirmed, 1 emitter (one round trip per emit)"
                    else events // 10
                )
                seconds = await SCENARIOS[name](client, count)
                await client.flushall()
                if round_number:
                    rates[name].append(count / seconds)
            if round_number:
                log(f"round {round_number}/{rounds} done")
    finally:
        await client.aclose()
    return {name: statistics.median(values) for name, values in rates.items()}


def render(medians: dict[str, float], events: int, rounds: int, version: str) -> str:
    raw = medians[RAW]
    lines = [
        f"Redis producer: {events:,} events per trial (1 emitter: {events // 10:,}), "
        f"{rounds} rounds, medians; redis-server {version}",
        "",
        "| producer | events/s | /raw |",
        "|---|---:|---:|",
    ]
    for name, rate in medians.items():
        lines.append(f"| {name} | {rate:,.0f} | {rate / raw:.2f}x |")
    ratio = medians[HEADLINE] / raw
    verdict = "met" if ratio >= TARGET else "MISSED"
    lines += [
        "",
        f"target: confirmed producer >= {TARGET}x raw pipelined XADD: {ratio:.2f}x, {verdict}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.redis_producer", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="2,000 events, 2 rounds")
    parser.add_argument("--events", type=int, metavar="N")
    parser.add_argument("--rounds", type=int, metavar="R")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    events = args.events or (2_000 if args.quick else 20_000)
    rounds = args.rounds or (2 if args.quick else 5)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    with RedisServer() as server:
        medians = asyncio.run(measure(server.url, events, rounds, log))
        print(render(medians, events, rounds, server.version))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
