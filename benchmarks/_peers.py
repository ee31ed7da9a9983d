"""The subjects measured: the bare limit, eventbus and its peers.

Each subject turns a :class:`~benchmarks._cases.Case` into a :class:`Bench`
(a tight loop running ``n`` emissions through the library's natural API), an
:class:`NA` (the library cannot do it, with the reason) or ``None`` (not
compared for that row).  Loops are written out per library, with the call
expression spelled literally, so no ``*args`` forwarding sits in the timed path.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from ._cases import EVENT_NAME, Case, make_sync_handler

SyncLoop = Callable[[int], None]
AsyncLoop = Callable[[int], Coroutine[Any, Any, None]]


@dataclass
class Bench:
    run: SyncLoop | AsyncLoop
    variant: str
    is_async: bool
    log: str = "info"
    keep: Any = field(default=None, repr=False)  # keeps buses/handlers alive


@dataclass(frozen=True)
class NA:
    reason: str


Built = Bench | NA | None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class Subject:
    key = ""
    label = ""
    dist = ""
    module = ""
    #: one-line description of the API used, for the notes under the table
    variant = ""

    def __init__(self) -> None:
        self.mod: Any = None
        self.error: str | None = None
        if self.module:
            try:
                self.mod = importlib.import_module(self.module)
            except ImportError as exc:  # pragma: no cover - depends on the venv
                self.error = f"not importable ({exc.__class__.__name__}: {exc})"

    @property
    def version(self) -> str | None:
        return _version(self.dist) if self.dist else None

    def build(self, case: Case) -> Built:
        if self.error:
            return NA(self.error)
        if case.eventbus_only:
            return None
        if case.op == "has_listeners":
            return self.has_listeners(case)
        if case.op == "sub":
            return self.sub(case)
        if case.pattern:
            return self.pattern(case)
        if case.mode == "sync":
            return self.emit_sync(case)
        return self.emit_async(case)

    # Defaults, overridden where the library can do the case.
    def emit_sync(self, case: Case) -> Built:
        return NA("no synchronous emit")

    def emit_async(self, case: Case) -> Built:
        return NA("no awaitable emit")

    def pattern(self, case: Case) -> Built:
        return NA("no pattern/wildcard subscriptions")

    def sub(self, case: Case) -> Built:
        return NA("cannot subscribe/unsubscribe")

    def has_listeners(self, case: Case) -> Built:
        return None  # only eventbus (absolute target) and the bare limit

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        """For the memory measurement: a function subscribing one handler to
        one event name of a fresh emitter."""
        return NA("no subscription")


# --------------------------------------------------------------------------- bare
class Bare(Subject):
    key = "bare"
    label = "bare loop"
    variant = (
        "limit: `for h in handlers: h(event)`; async: `if is_async: await h(event) "
        "else: h(event)` with precomputed flags; SUB: list append + remove; "
        "HL: `name in dict`"
    )

    def emit_sync(self, case: Case) -> Built:
        handlers = tuple(case.make_handlers())
        event = object()

        def run(n: int) -> None:
            for _ in repeat(None, n):
                for h in handlers:
                    h(event)

        return Bench(run, "for h in handlers: h(event)", False, keep=handlers)

    pattern = emit_sync

    def emit_async(self, case: Case) -> Built:
        pairs = tuple((h, k == "a") for h, k in zip(case.make_handlers(), case.kinds, strict=True))
        event = object()

        async def run(n: int) -> None:
            for _ in repeat(None, n):
                for h, is_async in pairs:
                    if is_async:
                        await h(event)
                    else:
                        h(event)

        return Bench(run, "await/call each handler by flag", True, keep=pairs)

    def sub(self, case: Case) -> Built:
        handlers: list[Any] = []
        h = make_sync_handler()
        append, remove = handlers.append, handlers.remove

        def run(n: int) -> None:
            for _ in repeat(None, n):
                append(h)
                remove(h)

        return Bench(run, "list.append + list.remove", False, keep=h)

    def has_listeners(self, case: Case) -> Built:
        subs: dict[str, list[Any]] = {}
        name = case.name

        def run(n: int) -> None:
            for _ in repeat(None, n):
                name in subs  # noqa: B015

        return Bench(run, "name in dict", False)

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        handlers: list[Any] = []
        return handlers.append


# ----------------------------------------------------------------------- eventbus
@dataclasses.dataclass(frozen=True)
class BenchSale:
    """The data of the typed cases (S1/topic, S1/fields): S1's payload as a dataclass."""

    sale_id: int


def _otel_instrument(bus: Any, mode: str) -> Any:
    """Instrument ``bus`` with eventbus.otel (the ``otel`` variants of S1/A1):
    no-op providers, or the SDK with in-memory exporter and reader, whose
    memory is cleared as it grows. Returns what must stay alive."""
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    from eventbus.otel import instrument

    if mode == "noop":
        instrument(bus, tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class Clearing(InMemorySpanExporter):  # keeps memory flat over millions of spans
        def export(self, spans: Any) -> Any:
            if len(self._finished_spans) > 10_000:
                self.clear()
            return super().export(spans)

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Clearing()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrument(bus, tracer_provider=tracer_provider, meter_provider=meter_provider)
    return tracer_provider, meter_provider


class EventBusSubject(Subject):
    key = "eventbus"
    label = "eventbus"
    dist = "eventbus"
    module = "eventbus"
    variant = "EventBus.emit_sync / await emit, on/off; structlog filtered at INFO"

    def build(self, case: Case) -> Built:
        if self.error:
            return NA(self.error)
        bus = self.mod.EventBus()
        name = case.name
        if case.op == "loop":

            def run_loop(n: int) -> None:
                for _ in repeat(None, n):
                    pass

            return Bench(run_loop, "for _ in repeat(None, n): pass", False)
        if case.op == "gate":
            return self._gate(bus)
        if case.op.startswith("typed-"):
            return self._typed(bus, case)
        if case.op == "has_listeners":
            has = bus.has_listeners

            def run_hl(n: int) -> None:
                for _ in repeat(None, n):
                    has(name)

            return Bench(run_hl, "bus.has_listeners(name)", False, case.log, keep=bus)
        if case.op in ("names", "patterns", "subn"):
            return self._scale(bus, case)
        if case.op == "sub":
            on, off = bus.on, bus.off
            h = make_sync_handler()

            def run_sub(n: int) -> None:
                for _ in repeat(None, n):
                    on(name, h)
                    off(name, h)

            return Bench(run_sub, "bus.on + bus.off", False, case.log, keep=(bus, h))
        handlers = case.make_handlers()
        for key, h in zip(case.subscription_keys(), handlers, strict=True):
            bus.on(key, h)
        keep: tuple[Any, ...] = (bus, handlers)
        if case.otel:
            try:
                keep = (*keep, _otel_instrument(bus, case.otel))
            except ImportError as exc:
                return NA(f"eventbus.otel needs the otel and test extras ({exc})")
        if case.mode == "sync":
            emit_sync = bus.emit_sync

            def run(n: int) -> None:
                for _ in repeat(None, n):
                    emit_sync(name, sale_id=1)

            return Bench(run, "bus.emit_sync", False, case.log, keep=keep)

        emit = bus.emit

        async def arun(n: int) -> None:
            for _ in repeat(None, n):
                await emit(name, sale_id=1)

        return Bench(arun, "await bus.emit", True, case.log, keep=keep)

    def _typed(self, bus: Any, case: Case) -> Built:
        """S1 through a ``Topic``: what building and checking the data costs."""
        if not hasattr(self.mod, "Topic"):
            return NA("this eventbus has no Topic")
        if case.op == "typed-pydantic":
            try:
                import pydantic
            except ImportError:
                return NA("pydantic is not installed")

            class SaleModel(pydantic.BaseModel):
                sale_id: int

            data_type: Any = SaleModel
        else:
            data_type = BenchSale
        topic = self.mod.Topic(case.name, data_type)
        handlers = case.make_handlers()
        for h in handlers:
            bus.on(topic, h)
        emit_sync = bus.emit_sync
        keep = (bus, handlers)
        if case.op == "typed-instance":

            def run_instance(n: int) -> None:
                for _ in repeat(None, n):
                    emit_sync(topic, BenchSale(1))

            return Bench(run_instance, "bus.emit_sync(topic, Sale(1))", False, case.log, keep=keep)

        def run_fields(n: int) -> None:
            for _ in repeat(None, n):
                emit_sync(topic, sale_id=1)

        return Bench(run_fields, "bus.emit_sync(topic, sale_id=1)", False, case.log, keep=keep)

    def _scale(self, bus: Any, case: Case) -> Built:
        """The scale cases: cost per emission against the number of names or
        patterns subscribed (every name emitted once before timing, so that
        what is timed is the steady state), and per subscribe + unsubscribe
        against the number of handlers already on the name."""
        size = case.size
        if case.op == "subn":
            on, off = bus.on, bus.off
            others = [make_sync_handler() for _ in range(size - 1)]  # size counts h itself
            for other in others:
                on(EVENT_NAME, other)
            h = make_sync_handler()

            def run_sub(n: int) -> None:
                for _ in repeat(None, n):
                    on(EVENT_NAME, h)
                    off(EVENT_NAME, h)

            return Bench(run_sub, "bus.on + bus.off", False, case.log, keep=(bus, h, others))
        if case.op == "names":
            keys = names = [f"item.n{i}.changed" for i in range(size)]
        else:
            keys = [f"p{i}.*" for i in range(size)]
            names = [f"p{i}.x" for i in range(size)]
        handlers = [make_sync_handler() for _ in keys]
        for key, h in zip(keys, handlers, strict=True):
            bus.on(key, h)
        emit_sync = bus.emit_sync
        for name in names:
            emit_sync(name, sale_id=1)
        names_cycle = itertools.cycle(names)

        def run(n: int) -> None:
            for name in itertools.islice(names_cycle, n):
                emit_sync(name, sale_id=1)

        return Bench(run, "bus.emit_sync, names round-robin", False, case.log, keep=(bus, handlers))

    def _gate(self, bus: Any) -> Built:
        """The exact per-emission logging check of eventbus (``_bus.py``:
        ``gate.may_debug or gate.seen_wrapper is not
        structlog_config.default_wrapper_class``), run on a gate made as a
        bus makes its own. White-box: n/a if those internals are not found."""
        try:
            logging_module = importlib.import_module("eventbus._logging")
            cfg = logging_module.structlog_config
            gate = logging_module.LogGate(None)
            if not (hasattr(gate, "may_debug") and hasattr(gate, "seen_wrapper")):
                raise AttributeError("LogGate.may_debug/seen_wrapper")
            if gate.may_debug or gate.seen_wrapper is not cfg.default_wrapper_class:
                return NA("debug is not filtered by the gate")
        except (ImportError, AttributeError) as exc:
            return NA(f"eventbus internals changed, logging check not isolated ({exc})")

        def run(n: int) -> None:
            for _ in repeat(None, n):
                if gate.may_debug or gate.seen_wrapper is not cfg.default_wrapper_class:
                    raise AssertionError("debug enabled")

        return Bench(run, "gate check only", False, keep=bus)

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        if self.error:
            return NA(self.error)
        bus = self.mod.EventBus()
        on = bus.on

        def subscribe(h: Callable[..., Any]) -> None:
            on(EVENT_NAME, h)

        subscribe.keep = bus  # type: ignore[attr-defined]
        return subscribe


# ------------------------------------------------------------------------ blinker
def _blinker_sync_wrapper(func: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The thinnest ``_sync_wrapper`` blinker's send_async needs for sync receivers."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


class Blinker(Subject):
    key = "blinker"
    label = "blinker"
    dist = "blinker"
    module = "blinker"
    variant = (
        "Signal.send(None, **kw) / await send_async (sync receivers via a minimal "
        "_sync_wrapper, M10 only); signal object pre-resolved (no name lookup); "
        "connect(weak=True default)/disconnect; no error isolation, unordered set"
    )

    def _signal(self, case: Case) -> tuple[Any, list[Any]]:
        sig = self.mod.Signal()
        handlers = case.make_handlers()
        for h in handlers:
            sig.connect(h)
        return sig, handlers

    def emit_sync(self, case: Case) -> Built:
        sig, handlers = self._signal(case)
        send = sig.send

        def run(n: int) -> None:
            for _ in repeat(None, n):
                send(None, sale_id=1)

        return Bench(run, "Signal.send", False, keep=(sig, handlers))

    def emit_async(self, case: Case) -> Built:
        sig, handlers = self._signal(case)
        send_async = sig.send_async
        if case.has_sync:
            wrap = _blinker_sync_wrapper

            async def arun_wrapped(n: int) -> None:
                for _ in repeat(None, n):
                    await send_async(None, _sync_wrapper=wrap, sale_id=1)

            return Bench(arun_wrapped, "send_async(_sync_wrapper=...)", True, keep=(sig, handlers))

        async def arun(n: int) -> None:
            for _ in repeat(None, n):
                await send_async(None, sale_id=1)

        return Bench(arun, "send_async", True, keep=(sig, handlers))

    def pattern(self, case: Case) -> Built:
        return NA("no patterns: one Signal object per name")

    def sub(self, case: Case) -> Built:
        sig = self.mod.Signal()
        connect, disconnect = sig.connect, sig.disconnect
        h = make_sync_handler()

        def run(n: int) -> None:
            for _ in repeat(None, n):
                connect(h)
                disconnect(h)

        return Bench(run, "connect + disconnect", False, keep=(sig, h))

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        if self.error:
            return NA(self.error)
        sig = self.mod.Signal()
        return sig.connect  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- pyee
class Pyee(Subject):
    key = "pyee"
    label = "pyee"
    dist = "pyee"
    module = "pyee"
    variant = "base EventEmitter.emit(name, **kw), add_listener/remove_listener; no error isolation"

    def emit_sync(self, case: Case) -> Built:
        ee = self.mod.EventEmitter()
        handlers = case.make_handlers()
        for h in handlers:
            ee.add_listener(case.name, h)
        emit, name = ee.emit, case.name

        def run(n: int) -> None:
            for _ in repeat(None, n):
                emit(name, sale_id=1)

        return Bench(run, "EventEmitter.emit", False, keep=(ee, handlers))

    def emit_async(self, case: Case) -> Built:
        return NA(
            "AsyncIOEventEmitter.emit schedules coroutine handlers "
            "(ensure_future) and returns without awaiting them"
        )

    def sub(self, case: Case) -> Built:
        ee = self.mod.EventEmitter()
        add, remove, name = ee.add_listener, ee.remove_listener, case.name
        h = make_sync_handler()

        def run(n: int) -> None:
            for _ in repeat(None, n):
                add(name, h)
                remove(name, h)

        return Bench(run, "add_listener + remove_listener", False, keep=(ee, h))

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        if self.error:
            return NA(self.error)
        ee = self.mod.EventEmitter()
        add = ee.add_listener

        def subscribe(h: Callable[..., Any]) -> None:
            add(EVENT_NAME, h)

        subscribe.keep = ee  # type: ignore[attr-defined]
        return subscribe


# ------------------------------------------------------------------------ psygnal
class Psygnal(Subject):
    key = "psygnal"
    label = "psygnal"
    dist = "psygnal"
    module = "psygnal"
    variant = (
        "SignalInstance((int,)).emit(1) (positional payload; compiled with mypyc), "
        "connect/disconnect; callback errors abort the loop (EmitLoopError)"
    )

    def _signal(self) -> Any:
        return self.mod.SignalInstance((int,), name=EVENT_NAME)

    def emit_sync(self, case: Case) -> Built:
        sig = self._signal()
        handlers = case.make_handlers()
        for h in handlers:
            sig.connect(h)
        emit = sig.emit

        def run(n: int) -> None:
            for _ in repeat(None, n):
                emit(1)

        return Bench(run, "SignalInstance.emit", False, keep=(sig, handlers))

    def emit_async(self, case: Case) -> Built:
        return NA(
            "coroutine callbacks are queued to a background async backend "
            "(set_async_backend); emit never awaits them"
        )

    def pattern(self, case: Case) -> Built:
        return NA("no patterns: one SignalInstance per signal")

    def sub(self, case: Case) -> Built:
        sig = self._signal()
        connect, disconnect = sig.connect, sig.disconnect
        h = make_sync_handler()

        def run(n: int) -> None:
            for _ in repeat(None, n):
                connect(h)
                disconnect(h)

        return Bench(run, "connect + disconnect", False, keep=(sig, h))

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        if self.error:
            return NA(self.error)
        sig = self._signal()
        return sig.connect  # type: ignore[no-any-return]


# ------------------------------------------------------------------ async-signals
class AsyncSignals(Subject):
    key = "async-signals"
    label = "async-signals"
    dist = "async-signals"
    module = "async_signals"
    variant = (
        "await Signal.send_robust(None, **kw) (the error-isolating variant), "
        "connect(weak=True default); SUB uses connect(weak=False) (see notes)"
    )

    def emit_sync(self, case: Case) -> Built:
        return NA("async-only: send/send_robust are coroutines")

    pattern = emit_sync

    def emit_async(self, case: Case) -> Built:
        sig = self.mod.Signal()
        handlers = case.make_handlers()
        for h in handlers:
            sig.connect(h)
        send_robust = sig.send_robust

        async def arun(n: int) -> None:
            for _ in repeat(None, n):
                await send_robust(None, sale_id=1)

        return Bench(arun, "send_robust", True, keep=(sig, handlers))

    def sub(self, case: Case) -> Built:
        # With the default weak=True every connect() registers a weakref.finalize
        # on the receiver that disconnect() never removes: a connect/disconnect
        # loop would grow memory without bound.  weak=False is also cheaper.
        sig = self.mod.Signal()
        connect, disconnect = sig.connect, sig.disconnect
        h = make_sync_handler()

        def run(n: int) -> None:
            for _ in repeat(None, n):
                connect(h, weak=False)
                disconnect(h)

        return Bench(run, "connect(weak=False) + disconnect", False, keep=(sig, h))

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        if self.error:
            return NA(self.error)
        sig = self.mod.Signal()
        return sig.connect  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- aiosignal
class AioSignal(Subject):
    key = "aiosignal"
    label = "aiosignal"
    dist = "aiosignal"
    module = "aiosignal"
    variant = "frozen Signal (a FrozenList), await send(**kw); no error isolation"

    def emit_sync(self, case: Case) -> Built:
        return NA("async-only: send is a coroutine")

    pattern = emit_sync

    def emit_async(self, case: Case) -> Built:
        if case.has_sync:
            return NA("awaits every receiver: sync handlers are not supported")
        sig = self.mod.Signal(owner=None)
        handlers = case.make_handlers()
        sig.extend(handlers)
        sig.freeze()
        send = sig.send

        async def arun(n: int) -> None:
            for _ in repeat(None, n):
                await send(sale_id=1)

        return Bench(arun, "await Signal.send", True, keep=(sig, handlers))

    def sub(self, case: Case) -> Built:
        return NA("frozen list: no subscribe/unsubscribe once it can send")

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        if self.error:
            return NA(self.error)
        sig = self.mod.Signal(owner=None)
        return sig.append  # type: ignore[no-any-return]


# ----------------------------------------------------------------------- pymitter
class Pymitter(Subject):
    key = "pymitter"
    label = "pymitter"
    dist = "pymitter"
    module = "pymitter"
    variant = (
        "EventEmitter.emit / await emit_async (async handlers run concurrently via "
        "asyncio.gather, not in order); P10: wildcard=True, 'user.*' + on_any "
        "(its '*' matches one segment only); no error isolation"
    )

    def _emitter(self, case: Case, *, wildcard: bool = False) -> tuple[Any, list[Any]]:
        ee = self.mod.EventEmitter(wildcard=wildcard)
        handlers = case.make_handlers()
        for key, h in zip(case.subscription_keys(), handlers, strict=True):
            if key == "*":
                ee.on_any(h)
            else:
                ee.on(key, h)
        return ee, handlers

    def emit_sync(self, case: Case) -> Built:
        ee, handlers = self._emitter(case, wildcard=case.pattern)
        emit, name = ee.emit, case.name

        def run(n: int) -> None:
            for _ in repeat(None, n):
                emit(name, sale_id=1)

        variant = "EventEmitter(wildcard=True).emit" if case.pattern else "EventEmitter.emit"
        return Bench(run, variant, False, keep=(ee, handlers))

    pattern = emit_sync

    def emit_async(self, case: Case) -> Built:
        ee, handlers = self._emitter(case)
        emit_async, name = ee.emit_async, case.name

        async def arun(n: int) -> None:
            for _ in repeat(None, n):
                await emit_async(name, sale_id=1)

        variant = "emit_async (gather)" if case.has_async else "emit_async"
        return Bench(arun, variant, True, keep=(ee, handlers))

    def sub(self, case: Case) -> Built:
        ee = self.mod.EventEmitter()
        on, off, name = ee.on, ee.off, case.name
        h = make_sync_handler()

        def run(n: int) -> None:
            for _ in repeat(None, n):
                on(name, h)
                off(name, h)

        return Bench(run, "on + off", False, keep=(ee, h))

    def subscriber(self) -> Callable[[Callable[..., Any]], None] | NA:
        if self.error:
            return NA(self.error)
        ee = self.mod.EventEmitter()
        on = ee.on

        def subscribe(h: Callable[..., Any]) -> None:
            on(EVENT_NAME, h)

        subscribe.keep = ee  # type: ignore[attr-defined]
        return subscribe


SUBJECT_CLASSES: tuple[type[Subject], ...] = (
    Bare,
    EventBusSubject,
    Blinker,
    Pyee,
    Psygnal,
    AsyncSignals,
    AioSignal,
    Pymitter,
)
#: peers the issue requires eventbus to beat wherever they can do a case
MUST_BEAT = ("blinker", "psygnal", "async-signals", "pymitter")


def make_subjects() -> list[Subject]:
    return [cls() for cls in SUBJECT_CLASSES]
