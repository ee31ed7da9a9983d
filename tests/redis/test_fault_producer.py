"""A producer process SIGKILLed flat out in confirmed mode loses no confirmed emission.

The producer (``producer_process.py``) runs 20 tasks emitting ``job.made`` through a
``RedisBridge(confirm=True)`` as fast as they can, and reports each emission whose ``await
bus.emit(...)`` returned. Once a number of them did (a different number each run), the test
SIGKILLs it, then checks that every confirmed emission is in the stream. The stalled
variant first freezes redis-server (SIGSTOP) for half a second, kills the producer during
the stall, then lets the server go on (SIGCONT).

One run is part of the suite; the fault tests of the bridge, 20 runs in a row each:

    .venv/bin/python -m pytest tests/redis -m fault
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from eventbus.redis.testing import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("producer_process.py")
STREAM = "jobs"
RUNS = 20
STALL = 0.5
"""Seconds the stalled variant keeps redis-server frozen before killing the producer."""
START_TIMEOUT = 60.0  # a guard: a loaded machine is slow, not broken


def confirmations(output: bytes) -> tuple[int, list[str], int]:
    """(emissions started, ids of the confirmed ones, failed ones) in the producer's output;
    a last line cut by the kill is ignored."""
    lines = output.split(b"\n")[:-1]
    started = sum(1 for line in lines if line == b"s")
    confirmed = [line[2:].decode() for line in lines if line.startswith(b"c ")]
    failed = sum(1 for line in lines if line.startswith(b"f "))
    return started, confirmed, failed


@pytest.mark.parametrize("stall", [False, True], ids=["flat-out", "during-a-stall"])
@pytest.mark.parametrize(
    "run",
    # run -1 is the suite's one run; `-m fault` selects the 20 others
    [-1, *(pytest.param(run, marks=pytest.mark.fault) for run in range(RUNS))],
)
def test_a_producer_killed_flat_out_loses_no_confirmed_emission(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, run: int, stall: bool
) -> None:
    kill_after = random.Random(run).randint(500, 3000)
    stderr = (tmp_path / "producer.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--url", redis_url, "--stream", STREAM],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    output = b""
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        while output.count(b"\nc ") < kill_after:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, f"the producer ended early:\n{(tmp_path / 'producer.log').read_text()}"
            assert time.monotonic() < deadline, "the producer is too slow to confirm"
            output += chunk
        if stall:
            server_pid = redis_server.pid
            assert server_pid is not None
            os.kill(server_pid, signal.SIGSTOP)
            try:
                time.sleep(STALL)  # the stall itself: emissions keep starting, none is confirmed
                process.send_signal(signal.SIGKILL)
                process.wait()
            finally:
                os.kill(server_pid, signal.SIGCONT)
        process.send_signal(signal.SIGKILL)
        output += process.stdout.read()  # what it wrote before it died
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        stderr.close()

    started, confirmed, failed = confirmations(output)
    client = Redis.from_url(redis_url)
    try:
        entries: Any = client.xrange(STREAM)
    finally:
        client.close()
    in_stream = {fields[b"id"].decode() for _, fields in entries}
    lost = [event_id for event_id in confirmed if event_id not in in_stream]
    print(
        f"\nproducer fault run {run} stall={stall}: emitted={started} confirmed={len(confirmed)} "
        f"failed={failed} in_stream={len(in_stream)} lost={len(lost)}"
    )
    assert process.returncode == -signal.SIGKILL
    assert len(confirmed) >= kill_after
    assert lost == []
    assert failed == 0
    assert len(in_stream) <= started
