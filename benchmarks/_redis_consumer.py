"""The Redis bridge's consumer alone, beside a raw redis-py ``XREADGROUP``/``XACK`` loop.

Each trial pre-fills a fresh stream with N entries in the bridge's format (untimed), then
times one consumer draining it in this process: from the start of consuming to the reply
of the last ``XACK``. ``bridge`` is an ``EventBus`` with ``RedisBridge(group=...)`` and one
trivial sync handler; ``raw`` loops on ``XREADGROUP COUNT batch``, ``json.loads`` each
payload, calls the same trivial handler and ``XACK``s the batch in one command. Rounds
alternate the order; the figures are medians. Run as part of ``python -m
benchmarks.redis_bridge``, or alone with ``--consumer-only``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any, Final

from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge
from eventbus.redis._entries import encode

__all__ = ["consumer_alone", "render_consumer_alone"]

EVENT: Final = "order.placed"
PAYLOAD: Final[dict[str, Any]] = {"sku": "SKU-12345", "qty": 3, "price": 9.5}
GROUP: Final = "alone"
TARGET: Final = 0.8
"""From the issue: the consumer alone >= 0.8x the raw loop's rate."""
IMPLS: Final = ("bridge", "raw", "bridge-dedup")


class _Acked(Redis):
    """Notes the time of its last ``XACK`` (or ack script) reply."""

    last_ack = 0.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = await super().execute_command(*args, **options)
        if args and args[0] in ("XACK", "EVALSHA", "EVAL"):
            self.last_ack = time.perf_counter()
        return reply


async def _fill(client: Redis, stream: str, count: int, batch: int) -> None:
    bus = EventBus("filler")
    report = await bus.emit(EVENT, **PAYLOAD)
    template = report.event
    for start in range(0, count, batch):
        async with client.pipeline(transaction=False) as pipe:
            for _ in range(min(batch, count - start)):
                fields = encode(template, (), "", stream)
                fields["id"] = f"{start}-{_}-{time.perf_counter_ns()}"
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            await pipe.execute()
    await client.xgroup_create(stream, GROUP, id="0")


async def _raw(client: _Acked, stream: str, count: int, batch: int) -> None:
    handled = 0
    while handled < count:
        reply = await client.xreadgroup(GROUP, "raw", {stream: ">"}, count=batch, block=1000)
        ids = []
        for listed in reply.values() if isinstance(reply, dict) else (s[1] for s in reply):
            pairs = (
                listed[0] if listed and len(listed) == 1 and isinstance(listed[0], list) else listed
            )
            for entry_id, fields in pairs:
                payload = json.loads(fields[b"payload"])
                if payload["qty"]:
                    handled += 1
                ids.append(entry_id)
        if ids:
            await client.xack(stream, GROUP, *ids)


async def _bridge(client: _Acked, stream: str, count: int, batch: int, dedup: bool) -> float:
    bus = EventBus("consumer")
    handled = 0
    done = asyncio.Event()

    def handler(event: Event) -> None:
        nonlocal handled
        if event["qty"]:
            handled += 1
            if handled == count:
                done.set()

    bus.on(EVENT, handler)
    bridge = RedisBridge(
        bus,
        client,
        stream=stream,
        group=GROUP,
        consumer="bridge",
        batch=batch,
        dedup_window=3600 if dedup else None,
    )
    async with bridge:
        await asyncio.wait_for(done.wait(), 600)
        while (await bridge.stats()).pending:  # the last acks are on their way
            await asyncio.sleep(0.001)
        return time.perf_counter()  # acknowledgements may go in transactions: not stamped


async def _trial(port: int, impl: str, count: int, batch: int, tag: str) -> tuple[float, float]:
    client = _Acked(host="127.0.0.1", port=port)
    stream = f"alone:{tag}:{impl}"
    try:
        await _fill(client, stream, count, batch)
        started, cpu = time.perf_counter(), time.process_time()
        if impl == "raw":
            await _raw(client, stream, count, batch)
            ended = client.last_ack
        else:
            ended = await _bridge(client, stream, count, batch, dedup=impl == "bridge-dedup")
        rate, cpu_rate = count / (ended - started), count / (time.process_time() - cpu)
        await client.delete(stream)
        return rate, cpu_rate
    finally:
        await client.aclose()


def consumer_alone(
    port: int, count: int, rounds: int, batch: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Entries/s of each impl per round (after one untimed warm-up round), and medians."""
    rates: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    cpu_rates: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for round_index in range(-1, rounds):
        order = IMPLS if round_index % 2 == 0 else tuple(reversed(IMPLS))
        for impl in order:
            rate, cpu_rate = asyncio.run(_trial(port, impl, count, batch, f"{round_index}"))
            if round_index >= 0:
                rates[impl].append(rate)
                cpu_rates[impl].append(cpu_rate)
        log(f"consumer alone, round {round_index + 1}/{rounds} done")
    medians = {impl: statistics.median(values) for impl, values in rates.items()}
    cpu = {impl: statistics.median(values) for impl, values in cpu_rates.items()}
    return {
        "cpu_rounds": cpu_rates,
        "cpu_medians": cpu,
        "cpu_bridge_over_raw": cpu["bridge"] / cpu["raw"],
        "cpu_dedup_over_raw": cpu["bridge-dedup"] / cpu["raw"],
        "events": count,
        "rounds": rates,
        "medians": medians,
        "bridge_over_raw": medians["bridge"] / medians["raw"],
        "dedup_over_raw": medians["bridge-dedup"] / medians["raw"],
        "target": TARGET,
    }


def render_consumer_alone(result: dict[str, Any]) -> str:
    """The consumer-alone rows as a Markdown table."""
    medians, cpu = result["medians"], result["cpu_medians"]
    raw, cpu_raw = medians["raw"], cpu["raw"]

    def row(label: str, impl: str) -> str:
        return (
            f"| {label} | {medians[impl]:,.0f} | {medians[impl] / raw:.2f}x "
            f"| {cpu[impl]:,.0f} | {cpu[impl] / cpu_raw:.2f}x |"
        )

    rows = [
        "| consumer alone (stream pre-filled) | entries/s | x raw "
        "| entries per CPU second (consumer process) | x raw |",
        "|---|---:|---:|---:|---:|",
        row("bridge", "bridge"),
        row("bridge, `dedup_window`", "bridge-dedup"),
        row("raw redis-py XREADGROUP/XACK loop", "raw"),
        "",
        f"{'PASS' if result['bridge_over_raw'] >= TARGET else 'MISS'}  consumer >= "
        f"{TARGET}x raw: {result['bridge_over_raw']:.2f}x; "
        f"{'PASS' if result['dedup_over_raw'] >= 0.5 else 'MISS'}  dedup >= 0.5x raw: "
        f"{result['dedup_over_raw']:.2f}x ({result['events']:,} entries, "
        f"median of {len(result['rounds']['raw'])} rounds)",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    import logging
    import sys

    import structlog

    from eventbus.redis.testing import RedisServer

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))

    with RedisServer() as server:
        figures = consumer_alone(server.port, int(sys.argv[1]), int(sys.argv[2]), 100, print)
        print(render_consumer_alone(figures))
