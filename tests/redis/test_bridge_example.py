"""The README's two-process example runs as written, against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "redis_bridge"


def test_web_and_worker_processes_exchange_events_through_the_stream(redis_url: str) -> None:
    environment = {**os.environ, "REDIS_URL": redis_url}
    worker = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "worker.py")],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        web = subprocess.run(
            [sys.executable, str(EXAMPLE / "web.py")],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        worker_output, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
        worker.wait()
    assert web.returncode == 0, web.stdout + web.stderr
    assert worker.returncode == 0, worker_output
    assert worker_output.count("worker: booked sale") == 3
    sales = [line.split()[-1] for line in web.stdout.splitlines() if "emitted sale" in line]
    answered = [line.split()[-1] for line in web.stdout.splitlines() if "written for sale" in line]
    assert len(sales) == 3
    assert sorted(answered) == sorted(sales)
