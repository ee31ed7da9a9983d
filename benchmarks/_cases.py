"""Benchmark cases and the handlers shared by every library.

Every library gets *the same* handler functions: ``def handler(*args, **kwargs)``
(and its ``async def`` twin) accept every calling convention used by the
libraries compared (eventbus passes one ``Event``, blinker ``(sender, **kw)``,
pyee and pymitter the emitted arguments, psygnal positional arguments,
async-signals ``signal=, sender=, **kw``), so no adapter sits between a library
and the handler.  Handlers are made by factories so that every subscription gets
a distinct function object (libraries de-duplicate identical handlers).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

EVENT_NAME = "sale.closed"
PATTERN_EVENT = "user.login"
#: Pattern subscriptions used by P10, alternated handler by handler.
PATTERNS = ("user.*", "*")

SyncHandler = Callable[..., None]
AsyncHandler = Callable[..., Coroutine[Any, Any, None]]


def make_sync_handler() -> SyncHandler:
    if _counter is not None:
        return _counting_sync(_counter)

    def handler(*args: Any, **kwargs: Any) -> None:
        return None

    return handler


def make_async_handler() -> AsyncHandler:
    if _counter is not None:
        return _counting_async(_counter)

    async def handler(*args: Any, **kwargs: Any) -> None:
        return None

    return handler


# Validation only (never timed): handlers that count their calls, so that a
# quick pass can check every library really runs every handler once per emission.
_counter: list[int] | None = None


def _counting_sync(counter: list[int]) -> SyncHandler:
    def handler(*args: Any, **kwargs: Any) -> None:
        counter[0] += 1

    return handler


def _counting_async(counter: list[int]) -> AsyncHandler:
    async def handler(*args: Any, **kwargs: Any) -> None:
        counter[0] += 1

    return handler


@contextmanager
def counting_handlers() -> Iterator[list[int]]:
    """While active, the factories above make counting handlers."""
    global _counter
    _counter = [0]
    try:
        yield _counter
    finally:
        _counter = None


Mode = Literal["sync", "async"]
Op = Literal[
    "emit",
    "has_listeners",
    "sub",
    "gate",
    "loop",
    "typed-instance",
    "typed-fields",
    "typed-pydantic",
    "names",
    "patterns",
    "subn",
]
LogMode = Literal["info", "debug-drop"]
#: eventbus.otel instrumentation of a case: none, a no-op tracer and meter, or the
#: SDK recording every span to an in-memory exporter (and metrics to an in-memory reader).
OtelMode = Literal["", "noop", "memory"]


@dataclass(frozen=True)
class Case:
    key: str
    family: str
    title: str
    mode: Mode  # "sync": timed from plain code; "async": awaited in one coroutine
    op: Op = "emit"
    kinds: str = ""  # one letter per handler, in subscription order: "s" sync, "a" async
    pattern: bool = False
    log: LogMode = "info"
    #: eventbus-only variant rows (logging), shown in their own section
    eventbus_only: bool = False
    tags: tuple[str, ...] = field(default=())
    otel: OtelMode = ""
    #: scale cases (op "names", "patterns", "subn"): how many names, patterns or handlers
    size: int = 0

    @property
    def name(self) -> str:
        """The concrete event name emitted."""
        return PATTERN_EVENT if self.pattern else EVENT_NAME

    def subscription_keys(self) -> list[str]:
        """Name or pattern each handler is subscribed under (same order as ``kinds``)."""
        if self.pattern:
            return [PATTERNS[i % len(PATTERNS)] for i in range(len(self.kinds))]
        return [EVENT_NAME] * len(self.kinds)

    @property
    def has_sync(self) -> bool:
        return "s" in self.kinds

    @property
    def has_async(self) -> bool:
        return "a" in self.kinds

    def make_handlers(self) -> list[Callable[..., Any]]:
        return [make_async_handler() if k == "a" else make_sync_handler() for k in self.kinds]


CASES: tuple[Case, ...] = (
    Case("S0", "S0", "emit_sync, no subscriber", "sync"),
    Case("S0a", "S0", "await emit, no subscriber", "async"),
    Case("HL", "S0", "has_listeners(name), no subscriber", "sync", op="has_listeners"),
    Case("S1", "S1", "emit_sync -> 1 sync handler", "sync", kinds="s"),
    Case("S10", "S10", "emit_sync -> 10 sync handlers", "sync", kinds="s" * 10),
    Case("A1", "A1", "await emit -> 1 async handler", "async", kinds="a"),
    Case("A10", "A10", "await emit -> 10 async handlers", "async", kinds="a" * 10),
    Case("M10", "M10", "await emit -> 5 sync + 5 async, interleaved", "async", kinds="sa" * 5),
    Case(
        "P10",
        "P10",
        "emit_sync user.login -> 10 sync handlers on user.* / *",
        "sync",
        kinds="s" * 10,
        pattern=True,
    ),
    Case("SUB", "SUB", "subscribe + unsubscribe one handler", "sync", op="sub"),
    # eventbus logging variants (same setup as S1 / A1)
    Case(
        "S1/debug",
        "S1",
        "S1 with structlog at DEBUG, entries dropped by a processor",
        "sync",
        kinds="s",
        log="debug-drop",
        eventbus_only=True,
    ),
    Case(
        "A1/debug",
        "A1",
        "A1 with structlog at DEBUG, entries dropped by a processor",
        "async",
        kinds="a",
        log="debug-drop",
        eventbus_only=True,
    ),
    # eventbus.otel instrumentation variants (same setup as S1 / A1)
    *(
        Case(
            f"{base}/otel-{otel}",
            base,
            f"{base} instrumented by eventbus.otel: {title}",
            mode,
            kinds=kinds,
            eventbus_only=True,
            otel=otel,
        )
        for base, mode, kinds in (("S1", "sync", "s"), ("A1", "async", "a"))
        for otel, title in (
            ("noop", "no-op tracer and meter providers"),
            ("memory", "SDK, spans to an in-memory exporter, metrics to an in-memory reader"),
        )
    ),
    Case(
        "LOG/gate",
        "S1",
        "white-box: the logging check eventbus runs per emission, debug filtered",
        "sync",
        op="gate",
        eventbus_only=True,
    ),
    Case(
        "LOG/loop",
        "S1",
        "the empty timing loop (subtracted from LOG/gate)",
        "sync",
        op="loop",
        eventbus_only=True,
    ),
)

# Typed events (eventbus only, same setup as S1): the cost of building and checking T.
TYPED_CASES: tuple[Case, ...] = (
    Case(
        "S1/topic",
        "S1",
        "S1 through a dataclass Topic, emitted with an instance: emit_sync(topic, Sale(1))",
        "sync",
        op="typed-instance",
        kinds="s",
        eventbus_only=True,
    ),
    Case(
        "S1/fields",
        "S1",
        "S1 through a dataclass Topic, emitted with fields: emit_sync(topic, sale_id=1)",
        "sync",
        op="typed-fields",
        kinds="s",
        eventbus_only=True,
    ),
    Case(
        "S1/pydantic",
        "S1",
        "S1 through a pydantic Topic, emitted with fields (model_validate per emission)",
        "sync",
        op="typed-pydantic",
        kinds="s",
        eventbus_only=True,
    ),
)
CASES += TYPED_CASES


def _size_label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


#: Scale cases: eventbus alone, cost against how much is subscribed (a chart of their own).
SCALE_SIZES: dict[str, tuple[int, ...]] = {
    "names": (1, 1_000, 10_000, 100_000),
    "patterns": (1, 10, 100, 1_000),
    "subn": (1, 100, 1_000, 10_000),
}
SCALE_TITLES = {
    "names": "emit_sync, {n} distinct name(s) each with 1 handler, emitted round-robin",
    "patterns": "emit_sync, {n} pattern(s) p<i>.* each with 1 handler, p<i>.x round-robin",
    "subn": "subscribe + unsubscribe one handler with {n} already on the name",
}
SCALE_FAMILIES = {"names": "NAMES", "patterns": "PATTERNS", "subn": "SUBN"}
SCALE_CASES: tuple[Case, ...] = tuple(
    Case(
        f"{SCALE_FAMILIES[op]}-{_size_label(n)}",
        SCALE_FAMILIES[op],
        SCALE_TITLES[op].format(n=f"{n:,}"),
        "sync",
        op=op,  # type: ignore[arg-type]
        eventbus_only=True,
        size=n,
    )
    for op, sizes in SCALE_SIZES.items()
    for n in sizes
)
CASES = CASES + SCALE_CASES

CASE_BY_KEY = {c.key: c for c in CASES}
MEMORY_KEY = "MEM"


def select_cases(spec: str | None) -> tuple[list[Case], bool]:
    """Cases selected by ``--cases`` (keys or families, comma separated) and
    whether the memory measurement (``MEM``) is selected."""
    if not spec:
        return list(CASES), True
    wanted = {s.strip().upper() for s in spec.split(",") if s.strip()}
    known = {c.key.upper() for c in CASES} | {c.family.upper() for c in CASES} | {MEMORY_KEY}
    unknown = wanted - known
    if unknown:
        raise SystemExit(
            f"unknown case(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(c.key for c in CASES)}, {MEMORY_KEY}"
        )
    chosen = [c for c in CASES if c.key.upper() in wanted or c.family.upper() in wanted]
    return chosen, MEMORY_KEY in wanted


def main_cases(cases: Iterable[Case]) -> list[Case]:
    return [c for c in cases if not c.eventbus_only]
