"""Consumer fault injection: every event is handled at least once, in every process of the
group, whatever is killed.

One producer (this process, a member of the group ``workers`` in stream-only mode, as a web
process that also handles) and three consumer processes (``fault_consumer_process.py``) share
the group on a redis-server with an append-only file fsynced on every write. Some events are
traps: the first handler to run one blocks, and the test SIGKILLs its process in the middle of
that handler, then starts it again under the same name; after the first kill the test also
SIGKILLs redis-server and restarts it. Then: every event was handled at least once, none was
acknowledged before a handler succeeded (checked on atomic snapshots all along the run),
nothing is pending (stuck) and nothing was dead-lettered. The figures (emitted, handled,
duplicates, dead letters) are printed (``-s`` shows them).

The default suite runs one short run; 20 full runs in a row:

    .venv/bin/python -m pytest tests/redis/test_fault_consumer.py -m fault -s
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import redis
from fault_consumer_process import GROUP, STREAM, recording_handler
from redis.asyncio import Redis

from eventbus import EventBus
from eventbus.redis import RedisBridge
from eventbus.redis.testing import RedisServer

SCRIPT = Path(__file__).with_name("fault_consumer_process.py")
ROOT = Path(__file__).resolve().parents[2]
CONSUMERS = ("c1", "c2", "c3")
MIN_IDLE = 2.0
# Guards only (a loaded machine is slow, not broken): nothing waits for them to pass.
START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 300.0
EXIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Size:
    events: int
    traps: int


QUICK = Size(events=200, traps=2)
FULL = Size(events=2_000, traps=8)


class Workers:
    """The consumer processes, started again under the same name after a kill."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url, self.log_dir = url, log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []
        self.starts = 0

    def start(self, name: str) -> None:
        self.starts += 1
        log = (self.log_dir / f"{name}-{self.starts}.log").open("wb")
        self.logs.append(log)
        command = [sys.executable, str(SCRIPT), "--url", self.url, "--consumer", name]
        command += ["--min-idle", str(MIN_IDLE)]
        self.processes[name] = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        assert process.wait(EXIT_TIMEOUT) == -signal.SIGKILL

    def tails(self) -> str:
        parts = []
        for log in self.logs:
            log.flush()
            lines = Path(log.name).read_text(errors="replace").splitlines()[-8:]
            parts.append(f"--- {Path(log.name).name}\n" + "\n".join(lines))
        return "\n".join(parts)


@contextmanager
def consumer_processes(url: str, log_dir: Path) -> Iterator[Workers]:
    workers = Workers(url, log_dir)
    try:
        for name in CONSUMERS:
            workers.start(name)
        yield workers
    finally:
        for process in workers.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        for log in workers.logs:
            log.close()


def entry_key(entry_id: str) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split("-")
    return int(milliseconds), int(sequence)


@dataclass
class Snapshot:
    """The stream, the group and the handlers' records, read in one MULTI (one instant)."""

    event_of: dict[str, str]
    pending: set[str]
    last_delivered: str
    runs: list[str]
    """The event id of every successful handler run, in the order they finished."""

    def acked_without_success(self) -> list[str]:
        last, handled = entry_key(self.last_delivered), set(self.runs)
        return [
            entry_id
            for entry_id, event_id in self.event_of.items()
            if entry_key(entry_id) <= last
            and entry_id not in self.pending
            and event_id not in handled
        ]


async def snapshot(client: Any, size: Size) -> Snapshot:
    async with client.pipeline(transaction=True) as pipe:
        pipe.xrange(STREAM)
        pipe.xpending_range(STREAM, GROUP, min="-", max="+", count=10 * size.events)
        pipe.xinfo_groups(STREAM)
        pipe.lrange("handled", 0, -1)
        entries, pending, groups, handled = await pipe.execute()
    (group,) = [info for info in groups if info["name"] == GROUP]
    return Snapshot(
        event_of={entry_id: fields["id"] for entry_id, fields in entries},
        pending={item["message_id"] for item in pending},
        last_delivered=group["last-delivered-id"],
        runs=[record.split(":", 1)[1] for record in handled],
    )


async def retrying(call: Any, deadline: float) -> Any:
    """``await call()``, again while the server is being restarted."""
    while True:
        try:
            return await call()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            assert time.monotonic() < deadline, "the server did not come back"
            await asyncio.sleep(0.05)


async def run_fault_scenario(server: RedisServer, log_dir: Path, size: Size) -> dict[str, int]:
    client: Any = Redis.from_url(server.url, decode_responses=True)
    records = Redis.from_url(server.url)
    bridge_client = Redis.from_url(server.url)
    bus = EventBus("web")
    bus.on("job.run", recording_handler("producer", records, traps=False))  # type: ignore[arg-type]
    produced: list[str] = []
    kills = restarts = 0
    try:
        await client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
        with consumer_processes(server.url, log_dir) as workers:
            deadline = time.monotonic() + START_TIMEOUT
            while await client.llen("ready") < len(CONSUMERS):
                assert time.monotonic() < deadline, workers.tails()
                await asyncio.sleep(0.05)
            bridge = RedisBridge(
                bus,
                bridge_client,
                stream=STREAM,
                group=GROUP,
                consumer="producer",
                forward="job.*",
                stream_only=True,
                batch=10,
                block=0.05,
                min_idle=MIN_IDLE,
                retry_delay=0.05,
            )
            async with bridge:
                every = size.events // (size.traps + 1)

                async def produce() -> None:
                    for seq in range(size.events):
                        trap = seq % every == every - 1 and seq // every < size.traps
                        report = await bus.emit("job.run", seq=seq, trap=trap)
                        produced.append(report.event.id)
                        if seq % 10 == 0:
                            await asyncio.sleep(0.001)  # a web process between requests
                    await bridge.flush()

                producing = asyncio.create_task(produce())
                deadline = time.monotonic() + SETTLE_TIMEOUT
                while True:
                    item = await retrying(lambda: client.blpop(["blocked"], timeout=0.2), deadline)
                    if item is not None:
                        victim = item[1].split(":", 1)[0]
                        assert victim in CONSUMERS, f"{victim} is not a consumer process"
                        workers.kill(victim)
                        kills += 1
                        if restarts == 0:
                            server.kill()  # redis-server too, once, with work in flight
                            server.restart()
                            restarts += 1
                        workers.start(victim)
                        continue
                    if not producing.done():
                        continue
                    producing.result()
                    state = await retrying(lambda: snapshot(client, size), deadline)
                    assert state.acked_without_success() == [], "acknowledged before handled"
                    if set(produced) <= set(state.runs) and not state.pending:
                        break
                    assert time.monotonic() < deadline, (
                        f"not settled: {len(set(produced) - set(state.runs))} never handled, "
                        f"{len(state.pending)} pending\n{workers.tails()}"
                    )
                stats = await bridge.stats()
            # A process started again just now may not handle SIGTERM yet: wait for it.
            while await client.llen("ready") < workers.starts:
                assert time.monotonic() < deadline, workers.tails()
                await asyncio.sleep(0.05)
            for process in workers.processes.values():
                process.send_signal(signal.SIGTERM)
            for process in workers.processes.values():
                assert process.wait(EXIT_TIMEOUT) == 0, workers.tails()

        final = await snapshot(client, size)
        figures = {
            "emitted": len(produced),
            "handled": len(set(produced) & set(final.runs)),
            "runs": len(final.runs),
            "duplicates": len(final.runs) - len(set(final.runs)),
            "dead_letters": await client.xlen(f"{STREAM}:dead"),
            "pending": len(final.pending),
            "consumers_killed": kills,
            "server_restarts": restarts,
        }
        print(f"\nconsumer fault run: {figures}")
        assert final.acked_without_success() == []
        assert figures["handled"] == size.events
        assert figures["dead_letters"] == 0
        assert figures["pending"] == 0
        assert stats.echoes == 0  # stream-only: the emitter's group runs its entries too
        assert kills >= 1, "no trap reached a consumer process"
        return figures
    finally:
        await bus.aclose()
        for each in (client, records, bridge_client):
            await each.aclose()


async def test_consumers_and_server_killed_lose_no_event_and_ack_none_unhandled(
    own_redis_server: RedisServer, tmp_path: Path
) -> None:
    await run_fault_scenario(own_redis_server, tmp_path, QUICK)


@pytest.mark.fault
@pytest.mark.parametrize("run", range(20))
async def test_consumers_and_server_killed_lose_nothing_run_after_run(
    own_redis_server: RedisServer, tmp_path: Path, run: int
) -> None:
    await run_fault_scenario(own_redis_server, tmp_path, FULL)
