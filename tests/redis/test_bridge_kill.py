"""A consumer process killed (SIGKILL) in the middle of a handler loses nothing.

Three consumer processes (``consumer_process.py``) share the group ``workers``; the test
process forwards 300 ``job.run`` events to the stream. The first handler call for an event
with ``seq >= 100`` blocks forever in whichever process gets it, and the test SIGKILLs that
process (the victim). Then: every event is handled at least once, nothing is lost or
dead-lettered, the victim's event is handled by a survivor, and no entry is ever acknowledged
before its handler succeeded (checked on atomic snapshots of the stream, the group's pending
entries and the handlers' records all along the run).

The stress variant runs the scenario 20 times:

    .venv/bin/python -m pytest tests/redis/test_bridge_kill.py -m heavy
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
from redis.asyncio import Redis

from eventbus import EventBus
from eventbus.redis import RedisBridge

SCRIPT = Path(__file__).with_name("consumer_process.py")
ROOT = Path(__file__).resolve().parents[2]
STREAM = "jobs"
GROUP = "workers"
DEAD_LETTER = f"{STREAM}:dead"
CONSUMERS = ("c1", "c2", "c3")
EVENTS = 300
VICTIM_FROM = 100
MIN_IDLE = 5.0
"""Idle time after which a survivor claims the victim's entries. The test looks at the victim's
entry right after the kill and expects it still pending there: 5 s leaves a loaded machine
room for that look (1 s was a narrow window), at the cost of a few seconds per run."""
# Guards only (a loaded machine is slow, not broken): nothing waits for them to pass.
START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 120.0
EXIT_TIMEOUT = 60.0


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path


@contextmanager
def consumer_processes(url: str, log_dir: Path) -> Iterator[dict[str, Worker]]:
    """The three consumer processes; whatever is still running at the end is killed."""
    workers: dict[str, Worker] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        for name in CONSUMERS:
            log_path = log_dir / f"{name}.log"
            log = log_path.open("wb")
            command = [
                sys.executable,
                str(SCRIPT),
                "--url",
                url,
                "--stream",
                STREAM,
                "--group",
                GROUP,
                "--consumer",
                name,
                "--victim-from",
                str(VICTIM_FROM),
                "--min-idle",
                str(MIN_IDLE),
                "--block",
                "0.05",
                "--retry-delay",
                "0.05",
                "--batch",
                "10",
            ]
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=ROOT,
                )
            except BaseException:
                log.close()
                raise
            workers[name] = Worker(name, process, log, log_path)
        yield workers
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()
            worker.log.close()


def logs_of(workers: dict[str, Worker]) -> str:
    """The end of each process's output, for failure messages."""
    parts = []
    for worker in workers.values():
        worker.log.flush()
        tail = worker.log_path.read_text(errors="replace").splitlines()[-15:]
        parts.append(f"--- {worker.name} (exit {worker.process.poll()})\n" + "\n".join(tail))
    return "\n".join(parts)


async def pop(client: Redis, key: str, deadline: float, workers: dict[str, Worker]) -> str:
    """BLPOP one item of ``key``, failing with the processes' logs after ``deadline``."""
    remaining = deadline - time.monotonic()
    item = await client.blpop([key], timeout=max(remaining, 0.01)) if remaining > 0 else None
    assert item is not None, f"nothing pushed to {key!r} in time\n{logs_of(workers)}"
    return str(item[1])


def entry_key(entry_id: str) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split("-")
    return int(milliseconds), int(sequence)


@dataclass
class Snapshot:
    """The stream, the group and the handlers' records, read in one MULTI (one instant)."""

    event_of: dict[str, str]
    """Entry id -> event id, for every entry in the stream, in stream order."""
    pending: dict[str, tuple[str, int]]
    """Entry id -> (consumer, times delivered), for every entry the group has not acked."""
    last_delivered: str
    handled: list[tuple[str, str]]
    """(consumer, event id) for every successful handler call, in the order they finished."""

    @property
    def handled_ids(self) -> set[str]:
        return {event_id for _, event_id in self.handled}

    def acked_without_success(self) -> list[str]:
        """Entries delivered and acknowledged whose event no handler call finished."""
        last = entry_key(self.last_delivered)
        handled = self.handled_ids
        return [
            entry_id
            for entry_id, event_id in self.event_of.items()
            if entry_key(entry_id) <= last
            and entry_id not in self.pending
            and event_id not in handled
        ]


async def snapshot(client: Redis) -> Snapshot:
    async with client.pipeline(transaction=True) as pipe:
        pipe.xrange(STREAM)
        pipe.xpending_range(STREAM, GROUP, min="-", max="+", count=10 * EVENTS)
        pipe.xinfo_groups(STREAM)
        pipe.lrange("handled", 0, -1)
        entries, pending, groups, handled = await pipe.execute()
    (group,) = [info for info in groups if info["name"] == GROUP]
    return Snapshot(
        event_of={entry_id: fields["id"] for entry_id, fields in entries},
        pending={
            item["message_id"]: (item["consumer"], item["times_delivered"]) for item in pending
        },
        last_delivered=group["last-delivered-id"],
        handled=[tuple(record.split(":", 1)) for record in handled],
    )


async def produce(client: Redis, count: int) -> list[str]:
    """Forward ``count`` ``job.run`` events (seq 0..count-1) from this process; their ids."""
    bus = EventBus("producer")
    ids = []
    async with RedisBridge(bus, client, stream=STREAM, forward="job.*") as bridge:
        for seq in range(count):
            report = await bus.emit("job.run", seq=seq)
            ids.append(report.event.id)
        await bridge.flush()
    await bus.aclose()
    return ids


async def wait_until_settled(
    client: Redis, produced: set[str], workers: dict[str, Worker]
) -> Snapshot:
    """Poll atomic snapshots until every event is handled and the group has nothing pending,
    checking on each one that no entry was acknowledged before a handler call succeeded."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        state = await snapshot(client)
        assert state.acked_without_success() == [], "acknowledged before being handled"
        if produced <= state.handled_ids and not state.pending:
            return state
        assert time.monotonic() < deadline, (
            f"not settled in {SETTLE_TIMEOUT}s: {len(produced - state.handled_ids)} events "
            f"never handled, pending {state.pending}\n{logs_of(workers)}"
        )
        await asyncio.sleep(0.02)


async def run_kill_scenario(redis_url: str, redis_client: Redis, log_dir: Path) -> None:
    client: Any = Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
        with consumer_processes(redis_url, log_dir) as workers:
            deadline = time.monotonic() + START_TIMEOUT
            ready = {await pop(client, "ready", deadline, workers) for _ in CONSUMERS}
            assert ready == set(CONSUMERS)

            produced = await produce(redis_client, EVENTS)

            victim, victim_event = (
                await pop(client, "blocked", time.monotonic() + SETTLE_TIMEOUT, workers)
            ).split(":", 1)
            workers[victim].process.send_signal(signal.SIGKILL)
            assert workers[victim].process.wait(EXIT_TIMEOUT) == -signal.SIGKILL

            # Right after the kill: the event in hand is still pending for the victim.
            at_kill = await snapshot(client)
            (victim_entry,) = [
                entry for entry, event in at_kill.event_of.items() if event == victim_event
            ]
            assert at_kill.pending.get(victim_entry) == (victim, 1)
            assert (victim, victim_event) not in at_kill.handled
            assert f"{victim}:{victim_event}" in await client.lrange("started", 0, -1)

            settled = await wait_until_settled(client, set(produced), workers)

            assert settled.handled_ids == set(produced)
            assert list(settled.event_of.values()) == produced
            handlers_of_victim_event = [
                consumer for consumer, event in settled.handled if event == victim_event
            ]
            assert handlers_of_victim_event != []
            assert victim not in handlers_of_victim_event
            assert await client.xlen(DEAD_LETTER) == 0
            (group,) = await client.xinfo_groups(STREAM)
            assert group["pending"] == 0
            assert group.get("lag", 0) == 0  # absent on Redis 6.2

            survivors = [worker for name, worker in workers.items() if name != victim]
            for worker in survivors:
                worker.process.send_signal(signal.SIGTERM)
            for worker in survivors:
                assert worker.process.wait(EXIT_TIMEOUT) == 0, logs_of(workers)
    finally:
        await client.aclose()


async def test_a_consumer_killed_in_a_handler_loses_no_event_and_acks_none_unhandled(
    redis_url: str, redis_client: Redis, tmp_path: Path
) -> None:
    await run_kill_scenario(redis_url, redis_client, tmp_path)


@pytest.mark.heavy
@pytest.mark.parametrize("run", range(20))
async def test_a_consumer_killed_in_a_handler_loses_nothing_run_after_run(
    redis_url: str, redis_client: Redis, tmp_path: Path, run: int
) -> None:
    await run_kill_scenario(redis_url, redis_client, tmp_path)
