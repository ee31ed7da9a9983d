"""Concurrent emissions (tasks and threads), once-handlers, and subscription
changes made while emissions run."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from thread_helpers import run_threads

from eventbus import EmitReport, Event, EventBus

JOIN_TIMEOUT = 60.0


# ---------------------------------------------------------------- once


def check_once_under_thread_emits(repetitions: int) -> None:
    for _ in range(repetitions):
        bus = EventBus("test")
        calls: list[int] = []
        reports: list[EmitReport] = []

        def handler(event: Event, calls: list[int] = calls) -> int:
            calls.append(threading.get_ident())
            return 1

        bus.once("x", handler)

        def emit_many(index: int, bus: EventBus = bus, reports: list[EmitReport] = reports) -> None:
            mine = [bus.emit_sync("x") for _ in range(20)]
            reports.extend(mine)

        errors = run_threads(8, emit_many, JOIN_TIMEOUT)

        assert errors == []
        assert len(reports) == 8 * 20
        assert len(calls) == 1
        assert sum(len(report.results) for report in reports) == 1
        assert bus.listener_count() == 0


class TestOnce:
    async def test_concurrent_tasks(self, bus: EventBus) -> None:
        """Once handler runs once under concurrent task emits."""
        calls: list[int] = []

        async def handler(event: Event) -> int:
            calls.append(event["n"])
            await asyncio.sleep(0)
            return event["n"]

        async def other(event: Event) -> None:
            await asyncio.sleep(0)

        bus.on("x", other, priority=1)  # every emission yields before reaching the once handler
        bus.once("x", handler)

        reports = await asyncio.gather(*(bus.emit("x", n=n) for n in range(50)))

        assert len(calls) == 1
        once_results = [
            result for report in reports for result in report.results if result.handler.once
        ]
        assert len(once_results) == 1
        assert once_results[0].value == calls[0]
        assert bus.listener_count("x") == 1

    @pytest.mark.usefixtures("fast_thread_switching")
    def test_concurrent_threads(self) -> None:
        """Once handler runs once under concurrent thread emits."""
        check_once_under_thread_emits(repetitions=20)

    @pytest.mark.heavy
    @pytest.mark.usefixtures("fast_thread_switching")
    def test_concurrent_threads_many(self) -> None:
        """A once handler runs once under concurrent thread emits, many times."""
        check_once_under_thread_emits(repetitions=500)

    async def test_predicate_claim(self, bus: EventBus) -> None:
        """With a predicate, it is claimed by the first emission whose predicate passes."""
        calls: list[int] = []
        bus.once("x", lambda e: calls.append(e["n"]), predicate=lambda e: e["n"] >= 2)

        first = await bus.emit("x", n=1)
        assert calls == []
        assert first.results == ()
        assert bus.listener_count("x") == 1

        second = await bus.emit("x", n=2)
        assert calls == [2]
        assert len(second.results) == 1
        assert bus.listener_count("x") == 0

        third = await bus.emit("x", n=3)
        assert calls == [2]
        assert third.results == ()

    async def test_predicate_concurrent(self, bus: EventBus) -> None:
        """With a predicate, under concurrent emits, it runs once for a passing event."""
        calls: list[int] = []

        async def first(event: Event) -> None:
            await asyncio.sleep(0)

        bus.on("x", first)
        bus.once("x", lambda e: calls.append(e["n"]), predicate=lambda e: e["n"] % 2 == 1)

        await asyncio.gather(*(bus.emit("x", n=n) for n in range(20)))

        assert len(calls) == 1
        assert calls[0] % 2 == 1

    async def test_claimed_not_shared(self, bus: EventBus) -> None:
        """A once handler claimed by one emission does not run in a concurrent one."""
        gate = asyncio.Event()
        reached_gate = asyncio.Event()
        calls: list[str] = []

        async def holds_the_second(event: Event) -> None:
            if event["which"] == "held":
                reached_gate.set()
                await gate.wait()

        bus.on("x", holds_the_second, priority=1)
        bus.once("x", lambda e: calls.append(e["which"]))

        held = asyncio.create_task(bus.emit("x", which="held"))  # started first, with the once
        await reached_gate.wait()  # handler in its snapshot
        free = await bus.emit("x", which="free")
        gate.set()
        held_report = await held

        assert calls == ["free"]
        assert len(free.results) == 2
        assert [r.handler.once for r in held_report.results] == [False]


# ---------------------------------------------------------------- subscription changes


class TestChangesMidEmission:
    async def test_off_mid_emission(self, bus: EventBus) -> None:
        """A handler unsubscribed during an emission still runs in it, but not in the next."""
        log: list[str] = []

        def later(event: Event) -> None:
            log.append(f"later {event['n']}")

        def remover(event: Event) -> None:
            log.append(f"remover {event['n']}")
            bus.off("x", later)

        bus.on("x", remover)
        bus.on("x", later)

        first = await bus.emit("x", n=1)
        second = await bus.emit("x", n=2)

        assert log == ["remover 1", "later 1", "remover 2"]
        assert len(first.results) == 2
        assert len(second.results) == 1

    async def test_on_mid_emission(self, bus: EventBus) -> None:
        """Handler subscribed during an emission runs only from the next."""
        log: list[str] = []

        def newcomer(event: Event) -> None:
            log.append(f"newcomer {event['n']}")

        def adder(event: Event) -> None:
            log.append(f"adder {event['n']}")
            bus.on("x", newcomer, priority=-1)

        bus.on("x", adder)

        first = await bus.emit("x", n=1)
        second = await bus.emit("x", n=2)

        assert log == ["adder 1", "adder 2", "newcomer 2"]
        assert len(first.results) == 1
        assert len(second.results) == 2

    async def test_on_pattern_mid_emission(self, bus: EventBus) -> None:
        """A handler subscribed to a pattern during an emission runs only from the next."""
        log: list[str] = []

        def adder(event: Event) -> None:
            log.append("adder")
            bus.on("a.*", lambda e: log.append("pattern newcomer"))

        bus.on("a.b", adder)

        await bus.emit("a.b")
        assert log == ["adder"]
        await bus.emit("a.b")
        assert log == ["adder", "adder", "pattern newcomer"]

    async def test_clear_mid_emission(self, bus: EventBus) -> None:
        """Handler removed by clear during an emission still runs in it."""
        log: list[str] = []
        cleared: list[int] = []

        def clearer(event: Event) -> None:
            log.append("clearer")
            cleared.append(bus.clear())

        async def later(event: Event) -> None:
            log.append("later")

        bus.on("x", clearer)
        bus.on("x", later)
        bus.on("y", lambda e: log.append("y"))

        report = await bus.emit("x")
        assert log == ["clearer", "later"]
        assert cleared == [3]
        assert len(report.results) == 2
        assert bus.listener_count() == 0

        second = await bus.emit("x")
        assert log == ["clearer", "later"]
        assert second.results == ()

    async def test_clear_owner_mid_emission(self, bus: EventBus) -> None:
        """A handler removed by clear(owner=...) during an emission still runs in it."""
        log: list[str] = []

        def clearer(event: Event) -> None:
            log.append("clearer")
            bus.clear(owner="plugin")

        bus.on("x", clearer)
        bus.on("x", lambda e: log.append("plugin handler"), owner="plugin")

        await bus.emit("x")
        await bus.emit("x")

        assert log == ["clearer", "plugin handler", "clearer"]

    async def test_change_while_suspended(self, bus: EventBus) -> None:
        """A subscription change during a suspended emission does not affect it.

        An emission suspended in an async handler keeps its starting snapshot,
        whatever another task changes meanwhile."""
        gate = asyncio.Event()
        started = asyncio.Event()
        log: list[str] = []

        async def first(event: Event) -> None:
            started.set()
            await gate.wait()

        def removed(event: Event) -> None:
            log.append("removed")

        def added(event: Event) -> None:
            log.append("added")

        bus.on("x", first)
        bus.on("x", removed)
        task = asyncio.create_task(bus.emit("x"))
        await started.wait()

        bus.off("x", removed)
        bus.on("x", added)
        gate.set()
        await task

        assert log == ["removed"]

    @pytest.mark.usefixtures("fast_thread_switching")
    def test_threads_emit_while_churn(self, bus: EventBus) -> None:
        """Emissions from threads stay consistent while other threads subscribe and unsubscribe."""
        emitters, churners = 8, 2
        emissions_per_thread, churn_iterations = 100, 200
        tokens = itertools.count()  # next() on itertools.count is atomic under the GIL
        calls: list[tuple[str, int]] = []

        def stable(event: Event) -> tuple[str, int]:
            call = ("stable", next(tokens))
            calls.append(call)
            return call

        def make_transient(index: int) -> Callable[[Event], Any]:
            def transient(event: Event) -> tuple[str, int]:
                call = (f"transient-{index}", next(tokens))
                calls.append(call)
                return call

            return transient

        transients = [make_transient(i) for i in range(churners)]
        bus.on("x", stable)
        reports: list[EmitReport] = []

        def work(index: int) -> None:
            if index < emitters:
                mine = [bus.emit_sync("x") for _ in range(emissions_per_thread)]
                reports.extend(mine)
            else:
                transient = transients[index - emitters]
                for i in range(churn_iterations):
                    bus.on("x", transient, priority=i % 3 - 1)
                    assert bus.off("x", transient) is True

        errors = run_threads(emitters + churners, work, JOIN_TIMEOUT)

        assert errors == []
        assert len(reports) == emitters * emissions_per_thread
        for report in reports:
            assert report.ok, report.errors
            names = [value[0] for value in report.values]
            assert names.count("stable") == 1
            assert len(names) == len(set(names)), "a handler ran twice in one emission"
        reported = sorted(value for report in reports for value in report.values)
        assert reported == sorted(calls)
        assert sum(1 for name, _ in calls if name == "stable") == len(reports)
        assert bus.listener_count("x") == 1

    @pytest.mark.usefixtures("fast_thread_switching")
    def test_once_from_threads(self, bus: EventBus) -> None:
        """Threads keep subscribing fresh once-handlers while others emit: each
        once-handler runs at most once, and every call shows up in one report."""
        calls: list[int] = []
        reports: list[EmitReport] = []
        subscribed: list[int] = []

        def make_once(token: int) -> Callable[[Event], int]:
            def once_handler(event: Event) -> int:
                calls.append(token)
                return token

            return once_handler

        def work(index: int) -> None:
            if index < 4:
                mine = [bus.emit_sync("x") for _ in range(100)]
                reports.extend(mine)
            else:
                for i in range(100):
                    token = index * 1000 + i
                    subscribed.append(token)
                    bus.once("x", make_once(token))

        errors = run_threads(6, work, JOIN_TIMEOUT)
        reports.append(bus.emit_sync("x"))  # picks up whatever is left

        assert errors == []
        assert len(calls) == len(set(calls)), "a once handler ran twice"
        assert sorted(calls) == sorted(subscribed)
        assert sorted(v for report in reports for v in report.values) == sorted(calls)
        assert bus.listener_count() == 0
