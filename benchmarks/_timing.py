"""Timing: calibration, interleaved rounds, structlog modes.

Round ``r`` measures every (case, subject) pair once, in an order shuffled
with ``Random(seed + r)``; the statistic reported is the median over rounds of
the per-emission cost.  Within a round a pair may be timed ``repeats`` times
back to back, keeping the fastest (noise on a shared machine only ever adds
time).  Sync loops are timed from plain code; async loops are timed inside one
coroutine on one event loop (created once for the whole run), so loop start-up
is never part of a timing.  The garbage collector is disabled while timing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, cast

import structlog

from ._cases import Case, counting_handlers
from ._peers import NA, AsyncLoop, Bench, Subject, SyncLoop


# --------------------------------------------------------------------- structlog
def _drop(*_args: Any) -> Any:
    raise structlog.DropEvent


def apply_log_mode(mode: str) -> None:
    """``info``: the production setting (debug filtered out by the wrapper
    class).  ``debug-drop``: debug enabled, every entry dropped by the first
    processor (what is left is the cost of building and processing the call)."""
    structlog.reset_defaults()
    if mode == "debug-drop":
        structlog.configure(
            processors=[_drop],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )
    else:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


# ------------------------------------------------------------------------ timing
async def _timed(run: AsyncLoop, n: int) -> int:
    t0 = perf_counter_ns()
    await run(n)
    return perf_counter_ns() - t0


@dataclass
class Cell:
    case: Case
    subject: Subject
    bench: Bench | None = None
    na: str | None = None
    iterations: int = 0
    samples: list[float] = field(default_factory=list)  # ns per emission, one per round
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


class Timer:
    def __init__(self, *, target_ns: int, repeats: int) -> None:
        self.target_ns = target_ns
        self.repeats = repeats
        self.loop = asyncio.new_event_loop()
        self._log_mode: str | None = None

    def close(self) -> None:
        self.loop.close()
        structlog.reset_defaults()

    def set_log(self, mode: str) -> None:
        if mode != self._log_mode:
            apply_log_mode(mode)
            self._log_mode = mode

    def time(self, bench: Bench, n: int) -> int:
        """Nanoseconds taken by ``n`` emissions (gc disabled)."""
        self.set_log(bench.log)
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            if bench.is_async:
                run_a: Any = bench.run
                return self.loop.run_until_complete(_timed(run_a, n))
            run_s = cast(SyncLoop, bench.run)
            t0 = perf_counter_ns()
            run_s(n)
            return perf_counter_ns() - t0
        finally:
            if was_enabled:
                gc.enable()

    def calibrate(self, bench: Bench) -> int:
        """Iteration count making one timing last about ``target_ns``."""
        for _ in range(3):  # warm up (lazy caches, first-call paths)
            self.time(bench, 1)
        n = 1
        while True:
            t = self.time(bench, n)
            if t >= self.target_ns // 5 or n >= 1 << 30:
                break
            n *= 10 if t < self.target_ns // 50 else 2
        n = max(1, round(n * self.target_ns / max(t, 1)))
        self.time(bench, n)  # warm at the final size
        return n

    def sample(self, bench: Bench, n: int) -> float:
        return min(self.time(bench, n) for _ in range(self.repeats)) / n


def build_cells(cases: list[Case], subjects: list[Subject]) -> list[Cell]:
    cells: list[Cell] = []
    for case in cases:
        for subject in subjects:
            try:
                built = subject.build(case)
            except Exception as exc:  # a peer API changed: report, don't die
                cells.append(Cell(case, subject, error=f"{type(exc).__name__}: {exc}"))
                continue
            if built is None:
                continue
            if isinstance(built, NA):
                cells.append(Cell(case, subject, na=built.reason))
            else:
                cells.append(Cell(case, subject, bench=built))
    return cells


def validate(
    timer: Timer, cases: list[Case], subjects: list[Subject]
) -> dict[tuple[str, str], str]:
    """Run every emission bench once with counting handlers; return the
    (case, subject) pairs whose handlers did not each run exactly once."""
    problems: dict[tuple[str, str], str] = {}
    for case in cases:
        if case.op != "emit":
            continue
        expected = len(case.kinds)
        for subject in subjects:
            with counting_handlers() as counter:
                try:
                    built = subject.build(case)
                    if not isinstance(built, Bench):
                        continue
                    timer.time(built, 3)
                except Exception as exc:
                    problems[case.key, subject.key] = f"{type(exc).__name__}: {exc}"
                    continue
            if counter[0] != 3 * expected:
                problems[case.key, subject.key] = (
                    f"validation: {counter[0]} handler calls for 3 emissions, "
                    f"expected {3 * expected}"
                )
    return problems


def run_rounds(
    timer: Timer,
    cells: list[Cell],
    *,
    rounds: int,
    seed: int,
    log: Callable[[str], None],
) -> None:
    live = [c for c in cells if c.bench is not None]
    t_start = time.perf_counter()
    for cell in live:
        assert cell.bench is not None
        try:
            cell.iterations = timer.calibrate(cell.bench)
        except Exception as exc:
            cell.error = f"{type(exc).__name__}: {exc}"
            cell.bench = None
    live = [c for c in live if c.bench is not None]
    log(f"calibrated {len(live)} measurements in {time.perf_counter() - t_start:.1f} s")
    for r in range(rounds):
        order = list(live)
        random.Random(seed + r).shuffle(order)
        gc.collect()
        for cell in order:
            assert cell.bench is not None
            cell.samples.append(timer.sample(cell.bench, cell.iterations))
        log(f"round {r + 1}/{rounds} done ({time.perf_counter() - t_start:.1f} s)")


def stderr_log(quiet: bool) -> Callable[[str], None]:
    def log(msg: str) -> None:
        if not quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    return log
