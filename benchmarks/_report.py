"""Results: tables, ratios, target checks, JSON, Markdown and the chart."""

from __future__ import annotations

import json
import os
import platform
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._cases import CASE_BY_KEY, SCALE_CASES, Case
from ._memory import MemoryResult
from ._peers import MUST_BEAT, Subject
from ._timing import Cell

PEER_EXCLUDE = ("bare", "eventbus")


# ----------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        nproc = os.cpu_count() or 0
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "nproc": nproc,
    }


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['implementation']} {m['python']} on {m['platform']}, {m['cpu']}, {m['nproc']} CPU(s)"
    )


# ----------------------------------------------------------------------- results
class Results:
    """Medians indexed by case and subject, plus everything needed for output."""

    def __init__(
        self,
        cells: list[Cell],
        subjects: list[Subject],
        memory: list[MemoryResult],
        meta: dict[str, Any],
    ) -> None:
        self.cells = cells
        self.subjects = subjects
        self.memory = memory
        self.meta = meta
        self.by: dict[str, dict[str, Cell]] = {}
        for c in cells:
            self.by.setdefault(c.case.key, {})[c.subject.key] = c
        self.case_keys = list(self.by)

    def cases(self, *, eventbus_only: bool) -> list[Case]:
        return [
            CASE_BY_KEY[k] for k in self.case_keys if CASE_BY_KEY[k].eventbus_only == eventbus_only
        ]

    def median(self, case: str, subject: str) -> float | None:
        cell = self.by.get(case, {}).get(subject)
        return cell.median if cell else None

    def best_peer(self, case: str) -> tuple[str, float] | None:
        peers = [
            (k, m)
            for k, c in self.by.get(case, {}).items()
            if k not in PEER_EXCLUDE and (m := c.median) is not None
        ]
        if not peers:
            return None
        return min(peers, key=lambda p: p[1])

    def ratio_bare(self, case: str) -> float | None:
        eb, bare = self.median(case, "eventbus"), self.median(case, "bare")
        if eb is None or not bare:
            return None
        return eb / bare

    def ratio_best(self, case: str) -> tuple[str, float] | None:
        eb, best = self.median(case, "eventbus"), self.best_peer(case)
        if eb is None or best is None:
            return None
        return best[0], eb / best[1]

    # -------------------------------------------------------------- n/a notes
    def na_keys(self) -> dict[str, str]:
        """Footnote letter for every distinct (subject, reason)."""
        keys: dict[str, str] = {}
        for c in self.cells:
            reason = c.na or (f"failed: {c.error}" if c.error else None)
            if reason:
                text = f"{c.subject.label}: {reason}"
                if text not in keys:
                    keys[text] = _letter(len(keys))
        return keys

    def cell_text(self, case: str, subject: str, notes: dict[str, str]) -> str:
        cell = self.by.get(case, {}).get(subject)
        if cell is None:
            return "-"
        reason = cell.na or (f"failed: {cell.error}" if cell.error else None)
        if reason:
            return f"n/a[{notes[f'{cell.subject.label}: {reason}']}]"
        med = cell.median
        return fmt_ns(med) if med is not None else "?"

    # ---------------------------------------------------------------- targets
    def targets(self) -> list[dict[str, Any]]:
        return compute_targets(self)

    # ------------------------------------------------------------------- json
    def to_json(self) -> dict[str, Any]:
        cases: dict[str, Any] = {}
        for key in self.case_keys:
            case = CASE_BY_KEY[key]
            res: dict[str, Any] = {}
            for skey, cell in self.by[key].items():
                res[skey] = {
                    "median_ns": _round(cell.median),
                    "samples_ns": [_round(s) for s in cell.samples],
                    "iterations": cell.iterations,
                    "api": cell.bench.variant if cell.bench else None,
                    "na": cell.na,
                    "error": cell.error,
                }
            best = self.best_peer(key)
            rb = self.ratio_best(key)
            cases[key] = {
                "title": case.title,
                "mode": case.mode,
                "structlog": case.log,
                "results": res,
                "eventbus_over_bare": _round(self.ratio_bare(key), 3),
                "best_peer": best[0] if best else None,
                "eventbus_over_best_peer": _round(rb[1], 3) if rb else None,
            }
        return {
            "schema": 1,
            **self.meta,
            "subjects": {
                s.key: {"version": s.version, "api": s.variant, "error": s.error}
                for s in self.subjects
            },
            "cases": cases,
            "memory_bytes_per_subscription": {
                m.subject: {"bytes": _round(m.bytes_per_subscription), "na": m.na}
                for m in self.memory
            },
            "targets": self.targets(),
        }


def _letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def _round(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def fmt_ns(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 100:
        return f"{x:.1f}"
    return f"{x:,.0f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


# ----------------------------------------------------------------------- targets
def compute_targets(r: Results) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(check: str, ok: bool | None, detail: str) -> None:
        status = "N/A" if ok is None else ("PASS" if ok else "MISS")
        out.append({"check": check, "status": status, "detail": detail})

    def med(case: str, subject: str) -> float | None:
        return r.median(case, subject)

    # 1. faster than the must-beat peers, wherever they can do the case
    for case in r.cases(eventbus_only=False):
        if case.key == "HL":
            continue  # absolute target below; peers not compared
        eb = med(case.key, "eventbus")
        peers = [(p, med(case.key, p)) for p in MUST_BEAT if med(case.key, p) is not None]
        if eb is None or not peers:
            continue
        slower = [f"{p} {fmt_ns(v)}" for p, v in peers if v is not None and eb >= v]
        faster = ", ".join(f"{p} {fmt_ns(v)}" for p, v in peers)
        detail = f"eventbus {fmt_ns(eb)} ns vs {faster}"
        if slower:
            detail += f"; not faster than: {', '.join(slower)}"
        add(f"{case.key}: eventbus faster than {'/'.join(p for p, _ in peers)}", not slower, detail)

    def vs_bare(case: str, limit: float) -> None:
        rb = r.ratio_bare(case)
        if case in r.by:
            add(
                f"{case} <= {limit}x bare",
                None if rb is None else rb <= limit,
                f"{fmt_ratio(rb)}",
            )

    def vs_peer(case: str, peer: str, limit: float, peer_case: str | None = None) -> None:
        eb, p = med(case, "eventbus"), med(peer_case or case, peer)
        if case in r.by:
            ratio = eb / p if eb is not None and p else None
            where = f"{peer} {peer_case}" if peer_case else peer
            add(
                f"{case} <= {limit}x {where}",
                None if ratio is None else ratio <= limit,
                f"{fmt_ratio(ratio)} (eventbus {fmt_ns(eb)} ns, {where} {fmt_ns(p)} ns)",
            )

    # 2. sync
    vs_bare("S1", 11)
    vs_peer("S1", "pyee", 1.3)
    vs_bare("S10", 4)
    vs_peer("S10", "pyee", 1.3)
    # 3. async
    vs_bare("A1", 7)
    vs_bare("A10", 2.5)
    vs_bare("M10", 2.7)
    if "M10" in r.by:
        eb, bl = med("M10", "eventbus"), med("M10", "blinker")
        speedup = bl / eb if eb and bl is not None else None
        add(
            "M10 >= 3x faster than blinker send_async",
            None if speedup is None else speedup >= 3,
            f"blinker/eventbus = {fmt_ratio(speedup)}",
        )
    # 4. no subscriber
    if "S0a" in r.by:
        vs_peer("S0a", "blinker", 2.5, peer_case="S0")
    if "HL" in r.by:
        hl = med("HL", "eventbus")
        add("has_listeners < 100 ns", None if hl is None else hl < 100, f"{fmt_ns(hl)} ns")
    # 5. subscribe/unsubscribe
    if "SUB" in r.by:
        eb, bl = med("SUB", "eventbus"), med("SUB", "blinker")
        add(
            "SUB no slower than blinker connect+disconnect",
            None if eb is None or bl is None else eb <= bl,
            f"eventbus {fmt_ns(eb)} ns, blinker {fmt_ns(bl)} ns",
        )
    # 6. logging with debug filtered out
    if "S1" in r.by:
        info, dbg = med("S1", "eventbus"), med("S1/debug", "eventbus")
        gate, loop = med("LOG/gate", "eventbus"), med("LOG/loop", "eventbus")
        black = (
            f"; black-box: S1 with debug on to a dropping sink costs {dbg - info:+.1f} ns "
            f"more than S1 INFO-filtered"
            if info is not None and dbg is not None
            else ""
        )
        if gate is not None and loop is not None:
            cost = gate - loop
            add(
                "debug filtered: logging adds < 30 ns per emission",
                cost < 30,
                f"white-box: eventbus's per-emission logging check costs {cost:+.1f} ns "
                f"(LOG/gate {fmt_ns(gate)} - empty loop {fmt_ns(loop)}){black}",
            )
        elif black:
            add(
                "debug filtered: logging adds < 30 ns per emission",
                None,
                "filtered cost not isolated" + black,
            )
    # 7. issue 17: the common case (0 to 1 handler) against the peers' fastest paths
    if "S0" in r.by:
        vs_peer("S0", "blinker", 1.0)
    if "S0a" in r.by:
        vs_peer("S0a", "blinker", 1.5)
    if "S1" in r.by:
        vs_peer("S1", "pyee", 1.1)
        eb, bl = med("S1", "eventbus"), med("S1", "blinker")
        speedup = bl / eb if eb and bl is not None else None
        add(
            "S1 >= 1.5x faster than blinker send",
            None if speedup is None else speedup >= 1.5,
            f"blinker/eventbus = {fmt_ratio(speedup)}",
        )
    if "A1" in r.by:
        vs_peer("A1", "aiosignal", 2.5)
    if "SUB" in r.by:
        vs_peer("SUB", "blinker", 0.8)
    # 8. issue 17: scale (eventbus against itself, smallest size as the reference)
    for family, limit in (("NAMES", 1.5), ("PATTERNS", 1.5), ("SUBN", 2.0)):
        sizes = scale_medians(r, family)
        if len(sizes) < 2:
            continue
        (small, base), (large, top) = sizes[0], sizes[-1]
        ratio = top / base if base else None
        add(
            f"{family}: {large:,} within {limit}x of {small:,}",
            None if ratio is None else ratio <= limit,
            f"{fmt_ratio(ratio)} ({fmt_ns(top)} ns vs {fmt_ns(base)} ns)",
        )
    # 9. memory
    mem = {m.subject: m.bytes_per_subscription for m in r.memory}
    if mem:
        eb, bl = mem.get("eventbus"), mem.get("blinker")
        add(
            "memory per subscription <= blinker's",
            None if eb is None or bl is None else eb <= bl,
            f"eventbus {fmt_ns(eb)} B, blinker {fmt_ns(bl)} B",
        )
    return out


def scale_medians(r: Results, family: str) -> list[tuple[int, float]]:
    """(size, eventbus median) of a scale family's cases that ran, smallest first."""
    out = []
    for case in SCALE_CASES:
        if case.family == family:
            m = r.median(case.key, "eventbus")
            if m is not None:
                out.append((case.size, m))
    return sorted(out)


def _scale_rows(r: Results) -> list[list[str]]:
    rows = []
    for case in SCALE_CASES:
        m = r.median(case.key, "eventbus")
        if m is None:
            continue
        sizes = scale_medians(r, case.family)
        base = sizes[0][1] if sizes else None
        rows.append([case.key, case.title, fmt_ns(m), fmt_ratio(m / base if base else None)])
    return rows


# ------------------------------------------------------------------------- text
def _table(rows: list[list[str]], header: list[str], right: Iterable[int] = ()) -> str:
    right = set(right)
    widths = [
        max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
        for i in range(len(header))
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def _main_rows(r: Results, notes: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    subj = [s.key for s in r.subjects]
    header = ["case", *[s.label for s in r.subjects], "eb/bare", "eb/best peer"]
    rows = []
    for case in r.cases(eventbus_only=False):
        rb = r.ratio_best(case.key)
        rows.append(
            [
                case.key,
                *[r.cell_text(case.key, k, notes) for k in subj],
                fmt_ratio(r.ratio_bare(case.key)),
                f"{fmt_ratio(rb[1])} ({rb[0]})" if rb else "-",
            ]
        )
    return header, rows


def _log_rows(r: Results) -> list[list[str]]:
    rows = []
    for base in ("S1", "A1"):
        ref = r.median(base, "eventbus")
        for key, label in (
            (base, "structlog INFO-filtered (production)"),
            (f"{base}/debug", "structlog DEBUG -> processor raising DropEvent"),
        ):
            m = r.median(key, "eventbus")
            if m is None:
                continue
            delta = f"{m - ref:+.1f}" if ref is not None and key != base else ""
            rows.append([key, label, fmt_ns(m), delta])
    gate, loop = r.median("LOG/gate", "eventbus"), r.median("LOG/loop", "eventbus")
    if gate is not None and loop is not None:
        rows.append(["LOG/loop", "empty timing loop", fmt_ns(loop), ""])
        rows.append(
            [
                "LOG/gate",
                "the per-emission check alone (INFO-filtered)",
                fmt_ns(gate),
                f"{gate - loop:+.1f}",
            ]
        )
    return rows


def _typed_rows(r: Results) -> list[list[str]]:
    """The typed-event cases beside S1: what building and checking the data costs."""
    ref = r.median("S1", "eventbus")
    rows = []
    for key in ("S1/topic", "S1/fields", "S1/pydantic"):
        m = r.median(key, "eventbus")
        if m is None or key not in CASE_BY_KEY:
            continue
        delta = f"{m - ref:+.1f}" if ref is not None else ""
        rows.append([key, CASE_BY_KEY[key].title, fmt_ns(m), delta])
    return rows


def _otel_rows(r: Results) -> list[list[str]]:
    """eventbus.otel's cost: S1/A1 instrumented, vs the same case not instrumented."""
    rows = []
    for base in ("S1", "A1"):
        ref = r.median(base, "eventbus")
        for variant in ("noop", "memory"):
            key = f"{base}/otel-{variant}"
            m = r.median(key, "eventbus")
            if m is None:
                continue
            ratio = f"x{m / ref:.1f}" if ref else ""
            delta = f"{m - ref:+.1f}" if ref is not None else ""
            rows.append([key, fmt_ns(m), delta, ratio])
    return rows


def _memory_rows(r: Results) -> list[list[str]]:
    labels = {s.key: s.label for s in r.subjects}
    return [
        [
            labels.get(m.subject, m.subject),
            fmt_ns(m.bytes_per_subscription)
            if m.bytes_per_subscription is not None
            else f"n/a ({textwrap.shorten(m.na or '', 60)})",
        ]
        for m in r.memory
    ]


def render_text(r: Results) -> str:
    notes = r.na_keys()
    parts = [
        f"eventbus benchmarks - {machine_line(r.meta['machine'])}",
        f"command: {r.meta['command']}",
        f"{r.meta['settings']['rounds']} rounds, median of per-emission cost in ns "
        f"(lower is better); each sample = min of {r.meta['settings']['repeats']} "
        f"timing(s) of ~{r.meta['settings']['target_ms']} ms",
        "",
    ]
    header, rows = _main_rows(r, notes)
    if rows:
        parts.append(_table(rows, header, right=range(1, len(header))))
        parts.append("")
        parts.extend(f"  {c.key:<5} {c.title}" for c in r.cases(eventbus_only=False))
        parts.append("")
    if notes:
        parts.append("n/a:")
        parts.extend(f"  [{k}] {text}" for text, k in notes.items())
        parts.append("")
    parts.append("APIs used:")
    parts.extend(f"  {s.label:<13} {s.variant}" for s in r.subjects if s.key != "bare")
    parts.append("")
    log_rows = _log_rows(r)
    if log_rows:
        parts.append(
            "eventbus logging cost (ns per emission; delta vs S1/A1 INFO-filtered, "
            "or vs the empty loop):"
        )
        parts.append(_table(log_rows, ["case", "structlog", "eventbus", "delta"], right=(2, 3)))
        parts.append("")
    typed_rows = _typed_rows(r)
    if typed_rows:
        parts.append("eventbus typed events (ns per emission; delta vs S1):")
        parts.append(_table(typed_rows, ["case", "what", "eventbus", "delta"], right=(2, 3)))
        parts.append("")
    otel_rows = _otel_rows(r)
    if otel_rows:
        parts.append("eventbus.otel cost (ns per emission; delta and ratio vs S1/A1):")
        parts.append(_table(otel_rows, ["case", "eventbus", "delta", "ratio"], right=(1, 2, 3)))
        parts.append("")
    scale_rows = _scale_rows(r)
    if scale_rows:
        parts.append("eventbus at scale (ns per operation; ratio to the smallest size):")
        parts.append(_table(scale_rows, ["case", "what", "eventbus", "ratio"], right=(2, 3)))
        parts.append("")
    if r.memory:
        n = r.meta["settings"]["memory_n"]
        parts.append(
            f"memory: bytes per subscription (tracemalloc, {n:,} distinct handlers, one name):"
        )
        parts.append(_table(_memory_rows(r), ["library", "bytes"], right=(1,)))
        parts.append("")
    targets = r.targets()
    if targets:
        parts.append("targets (from the issue; informative, never fail the run):")
        parts.extend(f"  {t['status']:<4}  {t['check']}: {t['detail']}" for t in targets)
    return "\n".join(parts)


# --------------------------------------------------------------------- markdown
def _md_table(header: list[str], rows: list[list[str]], right: Iterable[int] = ()) -> str:
    right = set(right)
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(r: Results) -> str:
    notes = r.na_keys()
    s = r.meta["settings"]
    parts = [
        "### Benchmarks",
        "",
        f"Median cost per emission in ns over {s['rounds']} interleaved rounds (lower is better). "
        f"{machine_line(r.meta['machine'])}. Command: `{r.meta['command']}`.",
        "",
    ]
    header, rows = _main_rows(r, notes)
    if rows:
        parts += [_md_table(header, rows, right=range(1, len(header))), ""]
        parts += [f"- **{c.key}**: {c.title}" for c in r.cases(eventbus_only=False)]
        parts.append("")
    if notes:
        parts += ["n/a:", ""]
        parts += [f"- [{k}] {text}" for text, k in notes.items()]
        parts.append("")
    parts += ["APIs used:", ""]
    parts += [
        f"- **{sub.label}** {sub.version or ''}: {sub.variant}"
        for sub in r.subjects
        if sub.key != "bare"
    ]
    parts.append("")
    log_rows = _log_rows(r)
    if log_rows:
        parts += ["eventbus logging cost:", ""]
        parts += [
            _md_table(["case", "structlog", "eventbus ns", "delta ns"], log_rows, right=(2, 3)),
            "",
        ]
    typed_rows = _typed_rows(r)
    if typed_rows:
        parts += ["eventbus typed events (delta vs S1):", ""]
        parts += [
            _md_table(["case", "what", "eventbus ns", "delta ns"], typed_rows, right=(2, 3)),
            "",
        ]
    otel_rows = _otel_rows(r)
    if otel_rows:
        parts += ["eventbus.otel cost:", ""]
        header = ["case", "eventbus ns", "delta ns", "ratio"]
        parts += [_md_table(header, otel_rows, right=(1, 2, 3)), ""]
    scale_rows = _scale_rows(r)
    if scale_rows:
        parts += ["eventbus at scale (ns per operation; ratio to the smallest size):", ""]
        parts += [_md_table(["case", "what", "ns", "ratio"], scale_rows, right=(2, 3)), ""]
    if r.memory:
        parts += [
            f"Memory per subscription ({s['memory_n']:,} distinct handlers, tracemalloc):",
            "",
        ]
        parts += [_md_table(["library", "bytes"], _memory_rows(r), right=(1,)), ""]
    targets = r.targets()
    if targets:
        parts += ["Targets:", ""]
        parts += [f"- {t['status']} {t['check']}: {t['detail']}" for t in targets]
        parts.append("")
    return "\n".join(parts)


# ------------------------------------------------------------------------ files
def write_json(r: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(r.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_markdown(r: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(r), encoding="utf-8")


def write_chart(r: Results, path: Path, *, log_scale: bool = True) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = r.cases(eventbus_only=False)
    subjects = r.subjects
    colors = {
        "bare": "#9e9e9e",
        "eventbus": "#d62728",
        "blinker": "#1f77b4",
        "pyee": "#2ca02c",
        "psygnal": "#9467bd",
        "async-signals": "#8c564b",
        "aiosignal": "#e377c2",
        "pymitter": "#ff7f0e",
    }
    group_rows: list[tuple[Case, list[tuple[Subject, float]]]] = []
    for case in cases:
        bars = [(s, m) for s in subjects if (m := r.median(case.key, s.key)) is not None]
        group_rows.append((case, bars))
    slots = max((len(b) for _, b in group_rows), default=1)
    fig_h = max(3.0, 0.22 * sum(len(b) + 1 for _, b in group_rows) + 1.5)
    fig, ax = plt.subplots(figsize=(11, fig_h))
    bar_h = 0.8 / max(slots, 1)
    yticks, ylabels = [], []
    seen: set[str] = set()
    vmax = max((m for _, b in group_rows for _, m in b if m), default=1.0)
    for gi, (case, bars) in enumerate(group_rows):
        y0 = -gi
        yticks.append(y0)
        ylabels.append(f"{case.key}\n" + textwrap.fill(case.title, 30))
        n = len(bars)
        for bi, (s, m) in enumerate(bars):
            y = y0 + (n - 1) * bar_h / 2 - bi * bar_h
            label = s.label if s.key not in seen else None
            seen.add(s.key)
            ax.barh(y, m, height=bar_h * 0.9, color=colors.get(s.key, "#17becf"), label=label)
            ax.text(
                m * (1.03 if log_scale else 1.0) + (0 if log_scale else vmax * 0.005),
                y,
                fmt_ns(m),
                va="center",
                fontsize=6.5,
            )
    ax.set_yticks(yticks)
    ax.set_yticklabels(ylabels, fontsize=8)
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel(
        "ns per emission (median; lower is better)" + (", log scale" if log_scale else "")
    )
    ax.set_title(
        f"eventbus vs peers - {r.meta['machine']['cpu']}, Python {r.meta['machine']['python']}",
        fontsize=10,
    )
    ax.grid(axis="x", which="both", alpha=0.25)
    ax.set_xlim(right=vmax * (3 if log_scale else 1.15))
    handles, labels = ax.get_legend_handles_labels()
    order = {s.label: i for i, s in enumerate(subjects)}
    hl = sorted(zip(handles, labels, strict=True), key=lambda p: order.get(p[1], 99))
    ax.legend([h for h, _ in hl], [lb for _, lb in hl], loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    write_scale_chart(r, scale_chart_path(path))


def scale_chart_path(path: Path) -> Path:
    """Where the scale chart goes, next to the main one: ``latest.png`` -> ``latest-scale.png``."""
    return path.with_name(f"{path.stem}-scale{path.suffix}")


def write_scale_chart(r: Results, path: Path) -> None:
    """Cost per operation against the number of names, patterns or handlers
    already subscribed (log-log; flat is the goal). Nothing when no scale case ran."""
    families = [
        (family, title, sizes)
        for family, title in (
            ("NAMES", "distinct names subscribed (emitted round-robin)"),
            ("PATTERNS", "patterns subscribed (emitted round-robin)"),
            ("SUBN", "handlers already on the name (subscribe + unsubscribe)"),
        )
        if (sizes := scale_medians(r, family))
    ]
    if not families:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 3.6), squeeze=False)
    for ax, (_, title, sizes) in zip(axes[0], families, strict=True):
        xs, ys = [x for x, _ in sizes], [y for _, y in sizes]
        ax.plot(xs, ys, marker="o", color="#d62728", label="eventbus")
        ax.axhline(
            ys[0] * 1.5, color="#9e9e9e", linestyle="--", linewidth=0.8, label="1.5x smallest"
        )
        for x, y in sizes:
            ax.annotate(fmt_ns(y), (x, y), textcoords="offset points", xytext=(0, 6), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(min(ys) / 2, max(max(ys), ys[0] * 1.5) * 3)
        ax.set_xlabel(title, fontsize=8)
        ax.set_ylabel("ns per operation (median)", fontsize=8)
        ax.grid(which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"eventbus at scale - {r.meta['machine']['cpu']}, Python {r.meta['machine']['python']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
