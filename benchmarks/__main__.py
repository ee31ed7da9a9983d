"""``python -m benchmarks [--quick] [--cases S1,A1] [--rounds N] ...``"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path

from ._cases import CASES, MEMORY_KEY, select_cases
from ._memory import measure_all
from ._peers import make_subjects
from ._report import Results, machine_info, render_text, write_chart, write_json, write_markdown
from ._timing import Timer, apply_log_mode, build_cells, run_rounds, stderr_log, validate

RESULTS_DIR = Path(__file__).resolve().parent / "results"

FULL = {"rounds": 25, "target_ms": 20.0, "repeats": 5, "memory_n": 10_000}
QUICK = {"rounds": 3, "target_ms": 1.0, "repeats": 1, "memory_n": 1_000}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark eventbus against a bare loop and its peers.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: few rounds, short timings (< 20 s); for CI, numbers are rough",
    )
    p.add_argument(
        "--cases",
        metavar="LIST",
        help="comma-separated cases or families to run "
        f"({', '.join(c.key for c in CASES)}, {MEMORY_KEY}); default: all",
    )
    p.add_argument("--rounds", type=int, metavar="N", help="rounds (full: 25, quick: 3)")
    p.add_argument("--target-ms", type=float, metavar="MS", help="duration of one timing")
    p.add_argument("--repeats", type=int, metavar="K", help="timings per pair per round (min kept)")
    p.add_argument("--memory-n", type=int, metavar="N", help="subscriptions for the memory case")
    p.add_argument("--seed", type=int, default=20240601, help="seed of the per-round shuffles")
    p.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="JSON output (default: benchmarks/results/latest.json, --quick: quick.json)",
    )
    p.add_argument("--no-json", action="store_true", help="do not write JSON")
    p.add_argument("--markdown", type=Path, metavar="PATH", help="also write a Markdown table")
    p.add_argument(
        "--chart",
        type=Path,
        metavar="PATH",
        help="PNG chart (default in full mode: benchmarks/results/latest.png)",
    )
    p.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    p.add_argument("--linear", action="store_true", help="linear instead of log scale on the chart")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = QUICK if args.quick else FULL
    rounds = args.rounds or int(preset["rounds"])
    target_ms = args.target_ms or float(preset["target_ms"])
    repeats = args.repeats or int(preset["repeats"])
    memory_n = args.memory_n or int(preset["memory_n"])
    if rounds < 1 or repeats < 1 or target_ms <= 0 or memory_n < 1:
        raise SystemExit("--rounds, --repeats, --target-ms and --memory-n must be positive")
    cases, with_memory = select_cases(args.cases)
    log = stderr_log(args.quiet)
    command = shlex.join(
        ["python", "-m", "benchmarks", *sys.argv[1:]]
        if argv is None
        else ["python", "-m", "benchmarks", *argv]
    )

    started = time.perf_counter()
    apply_log_mode("info")  # the production setting, also while buses are built
    subjects = make_subjects()
    for s in subjects:
        if s.error:
            log(f"{s.key}: {s.error}")
    timer = Timer(target_ns=int(target_ms * 1e6), repeats=repeats)
    problems = validate(timer, cases, subjects)
    timer.set_log("info")  # validation may have left another mode active
    cells = build_cells(cases, subjects)
    for cell in cells:
        problem = problems.get((cell.case.key, cell.subject.key))
        if problem and cell.bench is not None:
            log(f"{cell.case.key}/{cell.subject.key}: {problem}")
            cell.bench, cell.error = None, problem
    try:
        run_rounds(timer, cells, rounds=rounds, seed=args.seed, log=log)
    finally:
        timer.close()
    apply_log_mode("info")
    memory = []
    if with_memory:
        log(f"memory: {memory_n:,} subscriptions per library")
        memory = measure_all(subjects, memory_n)
    duration = time.perf_counter() - started

    meta = {
        "command": command,
        "executable": sys.executable,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "machine": machine_info(),
        "settings": {
            "mode": "quick" if args.quick else "full",
            "rounds": rounds,
            "target_ms": target_ms,
            "repeats": repeats,
            "memory_n": memory_n,
            "seed": args.seed,
            "statistic": "median over rounds of min-of-repeats ns per emission",
        },
    }
    results = Results(cells, subjects, memory, meta)
    print(render_text(results))
    print(f"\n(total {duration:.1f} s)")

    if not args.no_json:
        path = args.json or RESULTS_DIR / ("quick.json" if args.quick else "latest.json")
        write_json(results, path)
        log(f"wrote {path}")
    if args.markdown:
        write_markdown(results, args.markdown)
        log(f"wrote {args.markdown}")
    chart = args.chart or (None if args.quick else RESULTS_DIR / "latest.png")
    if chart and not args.no_chart:
        write_chart(results, chart, log_scale=not args.linear)
        log(f"wrote {chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
