"""Leaks: memory stays flat over many subscribe/emit/collect cycles and
published emissions (measured with tracemalloc), and the bus keeps no handler,
Event, task, loop or bus alive once it is done with it (checked with weakref
and gc).

Fast variants run tens of thousands of cycles; ``pytest -m heavy`` runs a
million subscribe/emit/collect cycles and 100k published emissions.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from eventbus import EmitReport, Event, EventBus

# Bytes the traced memory may grow by over a whole run, whatever its length:
# allocator noise, never a per-cycle leak (a single leaked object per cycle
# costs at least 16 bytes, i.e. >= 320 KiB over the fastest run).
FLAT = 64 * 1024
NAMES = tuple(f"leak.n{i}" for i in range(16))


async def settle() -> None:
    """Let the loop run one more step and collect garbage.

    The step that resumed after ``await task`` is called by a handle that
    references that task (and so its report) until the step ends: checks made
    in the same step would see it alive through no fault of the bus.
    """
    await asyncio.sleep(0)
    gc.collect()


Measure = Callable[[EventBus], int]


@pytest.fixture
def traced() -> Iterator[Measure]:
    """Trace allocations; yields a function measuring traced memory in a steady
    state: after a full collection, and after the bus forgot the subscriptions
    that collection killed (its next subscribe or introspection would: without
    this, the count of those pending depends on when the collector last ran)."""
    tracemalloc.start()

    def measure(bus: EventBus) -> int:
        gc.collect()
        bus.listener_count()
        return tracemalloc.get_traced_memory()[0]

    try:
        yield measure
    finally:
        tracemalloc.stop()


class Sentinel:
    """A weakly referenceable payload value: while it lives, so does its Event."""


class ShortLived:
    def __init__(self, cyclic: bool) -> None:
        self.calls = 0
        if cyclic:
            self.me = self  # freed by the garbage collector, not by reference counting

    def handle(self, event: Event) -> int:
        self.calls += 1
        return self.calls

    def __call__(self, event: Event) -> str:
        return "called"


# ---------------------------------------------------------------- memory over many cycles


def subscribe_emit_collect(bus: EventBus, cycle: int) -> None:
    """One cycle: a short-lived object subscribed, emitted to and dropped; in
    turn, the cycle also uses a once handler, a pattern with a predicate and
    ``off`` or a ``subscribed`` block; now and then the object is one only the
    collector frees (it stays subscribed, and called, until it does)."""
    name = NAMES[cycle % len(NAMES)]
    variant = cycle % 4
    listener = ShortLived(cyclic=cycle % 64 == 3)
    bus.on(name, listener.handle, priority=1)
    if variant == 0:
        bus.once(name, lambda event: event["n"])
        report = bus.emit_sync(name, n=cycle, payload=Sentinel())
    elif variant == 1:
        callable_object = ShortLived(cyclic=False)
        bus.on("leak.*", callable_object, predicate=lambda event: event["n"] % 2 == 1)
        report = bus.emit_sync(name, n=cycle, payload=Sentinel())
        assert bus.off("leak.*", callable_object) is True
        assert "called" in report.values
    elif variant == 2:
        with bus.subscribed(name, ShortLived(cyclic=False), owner="block"):
            report = bus.emit_sync(name, n=cycle, payload=Sentinel())
        assert "called" in report.values
    else:
        report = bus.emit_sync(name, n=cycle, payload=Sentinel())
    assert listener.calls == 1
    assert report.ok


def check_subscribe_emit_collect_stays_flat(cycles: int, measure: Measure) -> tuple[int, int]:
    bus = EventBus("leaks")
    bus.on("leak.*", lambda event: None)  # one subscription that stays
    for cycle in range(2_000):  # warm-up: caches fill, names are validated once
        subscribe_emit_collect(bus, cycle)
    before = measure(bus)

    for cycle in range(cycles):
        subscribe_emit_collect(bus, cycle)
    after = measure(bus)

    assert bus.listener_count() == 1
    assert bus.topics() == ("leak.*",)
    assert after - before < FLAT, f"{after - before} bytes more after {cycles} cycles"
    return before, after


async def publish_and_drain(bus: EventBus, emissions: int) -> None:
    for start in range(0, emissions, 500):
        tasks = [bus.publish("leak.published", n=n) for n in range(start, start + 500)]
        await bus.drain()
        assert all(task.done() for task in tasks)
        assert tasks[-1].result().values[:2] == ("sync", "async")
        del tasks


async def check_published_emissions_stay_flat(emissions: int, measure: Measure) -> None:
    bus = EventBus("leaks", handler_timeout=10.0)

    async def awaits(event: Event) -> str:
        await asyncio.sleep(0)
        return "async"

    def fails_now_and_then(event: Event) -> None:
        if event["n"] % 10 == 0:
            raise ValueError(event["n"])  # its traceback is a reference cycle

    bus.on("leak.published", lambda event: "sync", priority=2)
    bus.on("leak.published", awaits, priority=1)
    bus.on("leak.*", fails_now_and_then)
    await publish_and_drain(bus, 2_000)  # warm-up
    before = measure(bus)

    await publish_and_drain(bus, emissions)
    after = measure(bus)

    assert after - before < FLAT, f"{after - before} bytes more after {emissions} emissions"


class TestMemoryFlat:
    def test_subscribe_cycles(self, traced: Measure) -> None:
        """Subscribe emit collect cycles keep memory flat."""
        check_subscribe_emit_collect_stays_flat(20_000, traced)

    @pytest.mark.heavy
    def test_subscribe_cycles_million(self, traced: Measure) -> None:
        """A million subscribe-emit-collect cycles keep memory flat."""
        check_subscribe_emit_collect_stays_flat(1_000_000, traced)

    async def test_published_emissions(self, traced: Measure) -> None:
        """Published emissions keep memory flat."""
        await check_published_emissions_stay_flat(10_000, traced)

    @pytest.mark.heavy
    async def test_published_emissions_100k(self, traced: Measure) -> None:
        """100k published emissions keep memory flat."""
        await check_published_emissions_stay_flat(100_000, traced)


# ---------------------------------------------------------------- nothing kept alive: handlers


def _unsubscribe_by_off(bus: EventBus, handler: Callable[..., Any]) -> None:
    assert bus.off("a", handler) is True


def _unsubscribe_by_clear(bus: EventBus, handler: Callable[..., Any]) -> None:
    assert bus.clear() == 2


def _unsubscribe_by_clear_name(bus: EventBus, handler: Callable[..., Any]) -> None:
    assert bus.clear("a") == 1


def _unsubscribe_by_clear_owner(bus: EventBus, handler: Callable[..., Any]) -> None:
    assert bus.clear(owner="plugin") == 1


REMOVALS: dict[str, Callable[[EventBus, Callable[..., Any]], None]] = {
    "off": _unsubscribe_by_off,
    "clear": _unsubscribe_by_clear,
    "clear-name": _unsubscribe_by_clear_name,
    "clear-owner": _unsubscribe_by_clear_owner,
}


class TestNoHandlerKept:
    @pytest.mark.parametrize("removal", REMOVALS)
    async def test_no_handler_after_off(self, bus: EventBus, removal: str) -> None:
        """Bus keeps no handler after it was unsubscribed."""
        handler = ShortLived(cyclic=False)
        ref = weakref.ref(handler)
        bus.on("a", handler, owner="plugin", weak=False)
        bus.on("a.*", lambda event: None)
        for _ in range(3):  # every emission path, so that every cache has seen it
            await bus.emit("a")
            bus.emit_sync("a")
            await bus.publish("a")
        assert bus.has_listeners("a")

        REMOVALS[removal](bus, handler)
        del handler
        await settle()

        assert ref() is None

    @pytest.mark.parametrize("how", ["emit", "emit_sync", "publish"])
    async def test_no_once_handler_after_run(self, bus: EventBus, how: str) -> None:
        """Bus keeps no once handler after it ran."""
        handler = ShortLived(cyclic=False)
        ref = weakref.ref(handler)
        bus.once("a", handler)

        if how == "emit":
            report = await bus.emit("a")
        elif how == "emit_sync":
            report = bus.emit_sync("a")
        else:
            report = await bus.publish("a")
        assert report.values == ("called",)
        del handler, report
        await bus.drain()
        await settle()

        assert ref() is None
        assert bus.listener_count() == 0

    def test_no_handler_after_block(self, bus: EventBus) -> None:
        """Bus keeps no handler after a subscribed block."""
        handler = ShortLived(cyclic=False)
        ref = weakref.ref(handler)

        with bus.subscribed("a", handler):
            assert bus.emit_sync("a").values == ("called",)
        del handler
        gc.collect()

        assert ref() is None

    def test_reports_keep_no_object(self, bus: EventBus) -> None:
        """The bus does not keep a bound method's object alive through its reports.

        Reports the program dropped hold nothing; the bus itself holds bound
        methods weakly, so the object dies with the program's last reference."""
        listener = ShortLived(cyclic=True)
        ref = weakref.ref(listener)
        bus.on("a", listener.handle)
        for _ in range(3):
            bus.emit_sync("a")
        del listener
        gc.collect()

        assert ref() is None
        assert bus.listener_count() == 0


# ---------------------------------------------------------------- nothing kept alive: events


class Late(Exception):
    pass


async def _hangs(event: Event) -> None:
    await asyncio.Event().wait()


def _fails(event: Event) -> None:
    raise Late(event["payload"])


HANDLERS: dict[str, Callable[[Event], Any]] = {
    "succeeds": lambda event: event["payload"],
    "fails": _fails,
    "times out": _hangs,
}


class TestNoEventKept:
    @pytest.mark.parametrize("outcome", HANDLERS)
    @pytest.mark.parametrize("how", ["emit", "publish", "muted", "emit_sync"])
    async def test_no_event_after_emission(self, how: str, outcome: str) -> None:
        """Bus keeps no event once the emission is done."""
        hooks: list[str] = []
        bus = EventBus("leaks", on_error=lambda event, info, error: hooks.append(event.name))
        bus.on("a", HANDLERS[outcome], timeout=0.01)
        sentinel = Sentinel()
        ref = weakref.ref(sentinel)

        if how == "emit":
            report = await bus.emit("a", payload=sentinel)
        elif how == "publish":
            report = await bus.publish("a", payload=sentinel)
        elif (
            how == "emit_sync"
        ):  # off the loop, in a thread of its own (a pool would keep its args)
            reports: list[EmitReport] = []
            thread = threading.Thread(
                target=lambda payload: reports.append(bus.emit_sync("a", payload=payload)),
                args=(sentinel,),
            )
            thread.start()
            await asyncio.to_thread(thread.join, 60)
            assert not thread.is_alive()
            (report,) = reports
            del reports, thread
        else:
            with bus.muted():
                report = await bus.emit("a", payload=sentinel)
        assert report.ok is (outcome == "succeeds" or how == "muted")
        del sentinel, report
        await bus.drain()
        await settle()

        assert ref() is None
        assert hooks == ([] if outcome == "succeeds" or how == "muted" else ["a"])

    async def test_no_event_of_chain(self, bus: EventBus) -> None:
        """Bus keeps no event of a nested chain."""
        refs: list[weakref.ref[Sentinel]] = []

        async def relay(event: Event) -> None:
            inner = Sentinel()
            refs.append(weakref.ref(inner))
            await bus.emit("b", payload=inner)
            bus.publish("c", payload=inner)

        bus.on("a", relay)
        bus.on("b", lambda event: event["payload"])
        bus.on("c", lambda event: event["payload"])
        outer = Sentinel()
        refs.append(weakref.ref(outer))

        await bus.emit("a", payload=outer)
        del outer
        await bus.drain()
        await settle()

        assert len(refs) == 2
        assert [ref() for ref in refs] == [None, None]


# ---------------------------------------------------------------- nothing kept alive: tasks, loops


class TestNoTaskKept:
    async def test_no_task_after_drain(self, bus: EventBus) -> None:
        """Bus keeps no published task once drained."""

        async def handler(event: Event) -> None:
            await asyncio.sleep(0)

        bus.on("a", handler)
        refs = [weakref.ref(bus.publish("a")) for _ in range(50)]

        await bus.drain()
        await settle()

        assert [ref() for ref in refs] == [None] * 50

    async def test_no_on_error_task(self) -> None:
        """emit_sync inside a loop cannot await an async on_error: it becomes a task
        the bus tracks until drained, then forgets."""
        tasks: list[weakref.ref[asyncio.Task[Any]]] = []
        seen: list[str] = []

        async def on_error(event: Event, info: object, error: Exception) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.append(weakref.ref(task))
            seen.append(type(error).__name__)

        bus = EventBus("leaks", on_error=on_error)
        bus.on("a", _fails)

        for _ in range(5):
            bus.emit_sync("a", payload="x")
        await bus.drain()
        await settle()

        assert seen == ["Late"] * 5
        assert len(tasks) == 5
        assert [ref() for ref in tasks] == [None] * 5

    def test_private_loops_released(self, bus: EventBus) -> None:
        """The background loop of ``emit_sync`` is closed and released once ``aclose`` stops it."""
        loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

        async def handler(event: Event) -> str:
            loops.append(weakref.ref(asyncio.get_running_loop()))
            return "ran"

        bus.on("a", handler)
        for _ in range(5):
            assert bus.emit_sync("a").values == ("ran",)
        asyncio.run(bus.aclose())
        gc.collect()

        assert len(loops) == 5
        assert [ref() for ref in loops] == [None] * 5

    async def test_bus_collectable(self) -> None:
        """A bus with weak subscriptions and finished emissions is collectable."""
        bus = EventBus("leaks")
        listener = ShortLived(cyclic=False)
        bus.on("a", listener.handle)
        bus.on("a", lambda event: None)
        await bus.emit("a")
        await bus.publish("a")
        bus.emit_sync("a")
        await bus.drain()
        ref = weakref.ref(bus)

        del bus
        await settle()

        assert ref() is None
        assert listener.handle(Event("a")) == 4  # the object outlives the bus, unharmed

    def test_reports_hold_only_theirs(self, bus: EventBus) -> None:
        """A report kept by the program keeps its event (and so its payload); once
        dropped, nothing of that emission remains."""
        bus.on("a", lambda event: "value")
        sentinel = Sentinel()
        ref = weakref.ref(sentinel)
        report: EmitReport | None = bus.emit_sync("a", payload=sentinel)
        del sentinel
        gc.collect()

        assert ref() is not None
        assert report is not None
        assert report.event["payload"] is ref()

        report = None
        gc.collect()
        assert ref() is None
