"""Re-entrancy and loops: an emission knows its chain and refuses to loop back."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import structlog

from eventbus import EmitReport, Event, EventBus, ReentrancyError

SALE_LOOP = ("sale.closed", "ledger.updated", "stock.changed", "sale.closed")


INNER_MODES = pytest.mark.parametrize("how", ["emit", "emit_sync", "publish"])


def _forwarding(
    bus: EventBus,
    how: str,
    name: str,
    log: list[str] | None = None,
    caught: list[Any] | None = None,
) -> Any:
    """A handler that emits ``name`` ``how`` (awaited emit, emit_sync or publish); a refusal
    goes to ``caught`` if given, else it is the handler's failure."""

    def note() -> None:
        if log is not None:
            log.append("reemit")

    if how == "emit":

        async def forward_awaited(event: Event) -> None:
            note()
            try:
                await bus.emit(name)
            except ReentrancyError as error:
                if caught is None:
                    raise
                caught.append(error)

        return forward_awaited

    def forward(event: Event) -> None:
        note()
        try:
            if how == "emit_sync":
                bus.emit_sync(name)
            else:
                bus.publish(name)
        except ReentrancyError as error:
            if caught is None:
                raise
            caught.append(error)

    return forward


async def _emit_how(bus: EventBus, how: str, name: str) -> EmitReport:
    """The outer emission: emit_sync for the emit_sync loops (sync handlers only), else emit."""
    return bus.emit_sync(name) if how == "emit_sync" else await bus.emit(name)


# ---------------------------------------------------------------- self loops


class TestSelfLoops:
    @INNER_MODES
    async def test_own_event(self, bus: EventBus, how: str) -> None:
        """A handler emitting its own event is refused, as that handler's failure."""
        calls: list[str] = []
        reemit = _forwarding(bus, how, "a", log=calls)

        def sibling(event: Event) -> str:
            calls.append("sibling")
            return "sibling ran"

        bus.on("a", reemit, priority=1)
        bus.on("a", sibling)

        with bus.record() as recorder:
            report = await _emit_how(bus, how, "a")
            await bus.drain()

        assert calls == ["reemit", "sibling"]  # the inner emission ran no handler
        assert not report.ok
        (failure,) = report.errors
        assert failure.handler.callback is reemit
        assert isinstance(failure.error, ReentrancyError)
        assert failure.error.chain == ("a", "a")
        assert "a -> a" in str(failure.error)
        assert report.values == ("sibling ran",)
        assert recorder.names == ["a"]


# ---------------------------------------------------------------- longer loops


async def _assert_a_b_a_refused(bus_a: EventBus, bus_b: EventBus) -> None:
    """``a`` (on ``bus_a``) emits ``b`` (on ``bus_b``), whose handler emits ``a``
    again: that emission is refused with the whole chain, ``a`` runs once."""
    caught: list[ReentrancyError] = []
    a_calls: list[Event] = []

    async def on_a(event: Event) -> None:
        a_calls.append(event)
        await bus_b.emit("b")

    async def on_b(event: Event) -> None:
        try:
            await bus_a.emit("a")
        except ReentrancyError as error:
            caught.append(error)

    bus_a.on("a", on_a)
    bus_b.on("b", on_b)

    await bus_a.emit("a")

    assert len(a_calls) == 1
    (error,) = caught
    assert error.chain == ("a", "b", "a")
    assert "a -> b -> a" in str(error)


class TestLongerLoops:
    async def test_two_event_loop(self, bus: EventBus) -> None:
        """Two event loop is refused with the whole chain."""
        await _assert_a_b_a_refused(bus, bus)

    @pytest.mark.parametrize("how", ["emit", "emit_sync"])
    async def test_three_event_loop(self, bus: EventBus, how: str) -> None:
        """A three-event loop is refused with the whole chain."""
        caught: list[ReentrancyError] = []
        closed_calls: list[str] = []

        bus.on("sale.closed", _forwarding(bus, how, "ledger.updated", log=closed_calls))
        bus.on("ledger.updated", _forwarding(bus, how, "stock.changed"))
        bus.on("stock.changed", _forwarding(bus, how, "sale.closed", caught=caught))

        await _emit_how(bus, how, "sale.closed")

        assert len(closed_calls) == 1
        (error,) = caught
        assert error.chain == SALE_LOOP
        assert " -> ".join(SALE_LOOP) in str(error)

    async def test_mixed_modes_loop(self, bus: EventBus) -> None:
        """Loop mixing emit and ``emit_sync`` is refused."""
        caught: list[ReentrancyError] = []

        def on_a(event: Event) -> None:
            bus.emit_sync("b")

        def on_b(event: Event) -> None:
            try:
                bus.emit_sync("a")
            except ReentrancyError as error:
                caught.append(error)

        bus.on("a", on_a)
        bus.on("b", on_b)

        await bus.emit("a")

        assert [error.chain for error in caught] == [("a", "b", "a")]


# ---------------------------------------------------------------- publish keeps the chain


class TestPublishChain:
    async def test_keeps_chain(self, bus: EventBus) -> None:
        """Published task keeps the chain of the publishing handler."""
        caught: list[ReentrancyError] = []
        a_calls: list[Event] = []

        def on_a(event: Event) -> None:
            a_calls.append(event)
            bus.publish("b")

        async def on_b(event: Event) -> None:
            try:
                await bus.emit("a")
            except ReentrancyError as error:
                caught.append(error)

        bus.on("a", on_a)
        bus.on("b", on_b)

        await bus.emit("a")
        await bus.drain()

        assert len(a_calls) == 1
        (error,) = caught
        assert error.chain == ("a", "b", "a")
        assert "a -> b -> a" in str(error)

    async def test_back_refused(self, bus: EventBus) -> None:
        """Publishing back into the chain is refused synchronously."""
        caught: list[ReentrancyError] = []

        async def on_a(event: Event) -> None:
            await bus.emit("b")

        def on_b(event: Event) -> None:
            try:
                bus.publish("a")
            except ReentrancyError as error:
                caught.append(error)

        bus.on("a", on_a)
        bus.on("b", on_b)

        with bus.record() as recorder:
            await bus.emit("a")
            await bus.drain()

        assert [error.chain for error in caught] == [("a", "b", "a")]
        assert recorder.names == ["a", "b"]

    async def test_published_child(self, bus: EventBus) -> None:
        """Published event is a child of the publishing handlers event."""
        tasks: list[asyncio.Task[EmitReport]] = []
        bus.on("a", lambda event: tasks.append(bus.publish("b")))
        bus.on("b", lambda event: None)

        outer = await bus.emit("a")
        (task,) = tasks
        inner = await task

        assert inner.event.name == "b"
        assert inner.event.parent_id == outer.event.id
        assert inner.event.depth == outer.event.depth + 1 == 1


# ---------------------------------------------------------------- across buses


class TestAcrossBuses:
    async def test_loop_through_other_bus(self) -> None:
        """Loop through another bus is refused on the first bus."""
        await _assert_a_b_a_refused(EventBus("one"), EventBus("two"))

    async def test_same_name_other_bus(self) -> None:
        """Same name on another bus is not a loop."""
        bus1, bus2 = EventBus("one"), EventBus("two")
        seen: list[Event] = []

        async def forward(event: Event) -> EmitReport:
            return await bus2.emit("a")

        bus1.on("a", forward)
        bus2.on("a", seen.append)

        outer = await bus1.emit("a")

        assert outer.ok
        (inner,) = outer.values
        assert inner.ok
        assert seen == [inner.event]
        assert inner.event.parent_id == outer.event.id
        assert inner.event.depth == 1

    async def test_cross_bus_nesting(self) -> None:
        """Events across buses are linked by ``parent_id`` and depth."""
        bus1, bus2 = EventBus("one"), EventBus("two")
        seen: dict[str, Event] = {}

        async def on_a(event: Event) -> None:
            seen["a"] = event
            await bus2.emit("b")

        async def on_b(event: Event) -> None:
            seen["b"] = event
            await bus1.emit("c")

        bus1.on("a", on_a)
        bus2.on("b", on_b)
        bus1.on("c", lambda event: seen.setdefault("c", event))

        report = await bus1.emit("a")

        assert report.ok
        assert (seen["a"].depth, seen["b"].depth, seen["c"].depth) == (0, 1, 2)
        assert seen["a"].parent_id is None
        assert seen["b"].parent_id == seen["a"].id
        assert seen["c"].parent_id == seen["b"].id


# ---------------------------------------------------------------- max_depth


def _nest(bus: EventBus, length: int, ran: list[int], caught: list[ReentrancyError]) -> None:
    """Subscribe e0..e{length-1}: the handler of e<i> records its depth and emits e<i+1>."""

    def make(index: int) -> Any:
        async def handler(event: Event) -> None:
            ran.append(event.depth)
            try:
                await bus.emit(f"e{index + 1}")
            except ReentrancyError as error:
                caught.append(error)

        return handler

    for index in range(length):
        bus.on(f"e{index}", make(index))


class TestMaxDepth:
    @pytest.mark.parametrize("max_depth", [0, 1, 3])
    async def test_max_depth(self, max_depth: int) -> None:
        """Depths up to ``max_depth`` run and the next is refused."""
        bus = EventBus("test", max_depth=max_depth)
        ran: list[int] = []
        caught: list[ReentrancyError] = []
        beyond: list[Event] = []
        _nest(bus, max_depth + 1, ran, caught)
        bus.on(f"e{max_depth + 1}", beyond.append)

        with bus.record() as recorder:
            await bus.emit("e0")

        assert ran == list(range(max_depth + 1))
        assert beyond == []
        (error,) = caught
        expected_chain = tuple(f"e{i}" for i in range(max_depth + 2))
        assert error.chain == expected_chain
        assert " -> ".join(expected_chain) in str(error)
        assert "max_depth" in str(error)
        assert recorder.names == list(expected_chain[:-1])

    async def test_reentrant_until_max_depth(self) -> None:
        """Reentrant event may reenter until ``max_depth``."""
        bus = EventBus("test", max_depth=3)
        bus.declare("tick", reentrant=True)
        depths: list[int] = []
        caught: list[ReentrancyError] = []

        async def tick(event: Event) -> None:
            depths.append(event.depth)
            try:
                await bus.emit("tick")
            except ReentrancyError as error:
                caught.append(error)

        bus.on("tick", tick)

        report = await bus.emit("tick")

        assert report.ok
        assert depths == [0, 1, 2, 3]
        (error,) = caught
        assert error.chain == ("tick",) * 5
        assert "max_depth" in str(error)

    async def test_reentrant_only_itself(self, bus: EventBus) -> None:
        """Reentrant event does not make other events reentrant."""
        bus.declare("tick", reentrant=True)
        caught: list[ReentrancyError] = []

        async def on_a(event: Event) -> None:
            await bus.emit("tick")

        async def on_tick(event: Event) -> None:
            try:
                await bus.emit("a")
            except ReentrancyError as error:
                caught.append(error)

        bus.on("a", on_a)
        bus.on("tick", on_tick)

        await bus.emit("a")

        assert [error.chain for error in caught] == [("a", "tick", "a")]


# ---------------------------------------------------------------- not loops


class TestNotLoops:
    async def test_concurrent_tasks_no_loop(self, bus: EventBus) -> None:
        """Concurrent independent emissions of the same name are not a loop."""
        both_inside = asyncio.Event()
        inside: list[Event] = []

        async def handler(event: Event) -> str:
            inside.append(event)
            if len(inside) == 2:
                both_inside.set()
            await both_inside.wait()  # both emissions of "a" are in flight together
            return "done"

        bus.on("a", handler)

        first, second = await asyncio.wait_for(asyncio.gather(bus.emit("a"), bus.emit("a")), 60)

        assert first.ok
        assert second.ok
        assert first.values == second.values == ("done",)
        assert first.event.depth == second.event.depth == 0
        assert first.event.parent_id is None
        assert second.event.parent_id is None

    def test_two_threads_no_loop(self, bus: EventBus) -> None:
        """Two threads emitting the same name concurrently are not a loop."""
        barrier = threading.Barrier(2, timeout=60)
        reports: list[EmitReport] = []

        def handler(event: Event) -> str:
            barrier.wait()  # both emissions of "a" are in flight together
            return "done"

        bus.on("a", handler)

        threads = [
            threading.Thread(target=lambda: reports.append(bus.emit_sync("a"))) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)

        assert len(reports) == 2
        assert all(report.ok for report in reports)
        assert [report.values for report in reports] == [("done",), ("done",)]
        assert [report.event.depth for report in reports] == [0, 0]

    async def test_top_level_after_chain(self, bus: EventBus) -> None:
        """Emission after a chain has finished is top level again."""
        bus.on("a", lambda event: None)

        await bus.emit("a")
        again = await bus.emit("a")

        assert again.ok
        assert again.event.depth == 0
        assert again.event.parent_id is None

    async def test_twice_in_sequence(self, bus: EventBus) -> None:
        """The same event emitted twice in sequence by one handler is not a loop."""

        async def on_a(event: Event) -> tuple[bool, bool]:
            first = await bus.emit("b")
            second = await bus.emit("b")
            return first.ok, second.ok

        bus.on("a", on_a)
        bus.on("b", lambda event: None)

        report = await bus.emit("a")

        assert report.ok
        assert report.values == ((True, True),)


# ---------------------------------------------------------------- the chain follows the code


class TestChainFollows:
    async def test_through_await(self, bus: EventBus) -> None:
        """Chain follows await into helper coroutines."""
        caught: list[ReentrancyError] = []

        async def emit_again() -> None:
            await asyncio.sleep(0)
            await bus.emit("a")

        async def helper() -> None:
            try:
                await emit_again()
            except ReentrancyError as error:
                caught.append(error)

        async def on_a(event: Event) -> None:
            await helper()

        bus.on("a", on_a)

        await bus.emit("a")

        assert [error.chain for error in caught] == [("a", "a")]

    async def test_into_tasks(self, bus: EventBus) -> None:
        """Chain follows tasks created inside a handler."""
        caught: list[ReentrancyError] = []
        calls: list[Event] = []

        async def emit_again() -> None:
            try:
                await bus.emit("a")
            except ReentrancyError as error:
                caught.append(error)

        async def on_a(event: Event) -> None:
            calls.append(event)
            await asyncio.create_task(emit_again())

        bus.on("a", on_a)

        await bus.emit("a")

        assert len(calls) == 1
        assert [error.chain for error in caught] == [("a", "a")]

    async def test_task_emission_child(self, bus: EventBus) -> None:
        """Event emitted from a task created in a handler is its child."""

        async def on_a(event: Event) -> EmitReport:
            return await asyncio.create_task(bus.emit("b"))

        bus.on("a", on_a)
        bus.on("b", lambda event: None)

        outer = await bus.emit("a")

        (inner,) = outer.values
        assert inner.event.parent_id == outer.event.id
        assert inner.event.depth == 1


# ---------------------------------------------------------------- parent ids and depth


class TestNesting:
    async def test_nesting_fields(self, bus: EventBus) -> None:
        """Nested events carry ``parent_id`` and depth."""
        seen: dict[str, Event] = {}

        async def on_a(event: Event) -> None:
            seen["a"] = event
            await bus.emit("b")

        def on_b(event: Event) -> None:
            seen["b"] = event
            bus.emit_sync("c")

        bus.on("a", on_a)
        bus.on("b", on_b)
        bus.on("c", lambda event: seen.setdefault("c", event))

        await bus.emit("a")

        assert seen["a"].parent_id is None
        assert seen["a"].depth == 0
        assert seen["b"].parent_id == seen["a"].id
        assert seen["b"].depth == 1
        assert seen["c"].parent_id == seen["b"].id
        assert seen["c"].depth == 2

    async def test_siblings_share_parent(self, bus: EventBus) -> None:
        """Sibling emissions of one handler share the same parent."""
        children: list[Event] = []

        async def on_a(event: Event) -> None:
            await bus.emit("b")
            await bus.emit("c")

        bus.on("a", on_a)
        bus.on("b", children.append)
        bus.on("c", children.append)

        outer = await bus.emit("a")

        assert [(child.name, child.parent_id, child.depth) for child in children] == [
            ("b", outer.event.id, 1),
            ("c", outer.event.id, 1),
        ]


# ---------------------------------------------------------------- what a refusal leaves behind


class TestRefusalTraces:
    async def test_not_recorded(self, bus: EventBus) -> None:
        """Refused emission is not recorded."""

        async def on_a(event: Event) -> None:
            await bus.emit("b")

        async def on_b(event: Event) -> None:
            await bus.emit("a")

        bus.on("a", on_a)
        bus.on("b", on_b)

        with bus.record() as recorder:
            await bus.emit("a")

        assert recorder.names == ["a", "b"]

    async def test_not_logged(self, bus: EventBus) -> None:
        """Refused emission is not logged as emitted."""
        b_events: list[Event] = []

        async def on_a(event: Event) -> None:
            await bus.emit("b")

        async def on_b(event: Event) -> None:
            b_events.append(event)
            await bus.emit("a")

        bus.on("a", on_a)
        bus.on("b", on_b)

        with structlog.testing.capture_logs() as logs:
            report = await bus.emit("a")

        emitted = [entry for entry in logs if entry["event"] == "eventbus.emitted"]
        assert [(entry["event_name"], entry["event_id"]) for entry in emitted] == [
            ("b", b_events[0].id),
            ("a", report.event.id),
        ]

    async def test_logged(self, bus: EventBus) -> None:
        """Refused loop is logged at error level with its chain."""

        async def on_a(event: Event) -> None:
            await bus.emit("b")

        async def on_b(event: Event) -> None:
            await bus.emit("a")

        bus.on("a", on_a)
        bus.on("b", on_b)

        with structlog.testing.capture_logs() as logs:
            await bus.emit("a")

        refused = [entry for entry in logs if entry["event"] == "eventbus.loop_refused"]
        assert len(refused) == 1
        (entry,) = refused
        assert entry["log_level"] == "error"
        assert entry["chain"] == "a -> b -> a"
        assert entry["event_name"] == "a"
        assert entry["bus"] == "test"

    def test_emit_sync_refusal_quiet(self, bus: EventBus) -> None:
        """A refused ``emit_sync`` loop is not recorded nor logged as emitted."""
        bus.on("a", lambda event: bus.emit_sync("a"))

        with structlog.testing.capture_logs() as logs, bus.record() as recorder:
            report = bus.emit_sync("a")

        assert isinstance(report.errors[0].error, ReentrancyError)
        assert recorder.names == ["a"]
        emitted = [entry for entry in logs if entry["event"] == "eventbus.emitted"]
        assert [entry["event_id"] for entry in emitted] == [report.event.id]
        assert [entry["chain"] for entry in logs if entry["event"] == "eventbus.loop_refused"] == [
            "a -> a"
        ]
