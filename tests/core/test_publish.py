"""What only ``bus.publish`` does (a task, refusals raised at once) and ``bus.drain``.

What every way of emitting does is in test_emission.py; ``aclose`` in test_aclose.py.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from eventbus import BusClosedError, EmitReport, Event, EventBus

# ---------------------------------------------------------------- publish


class TestPublish:
    async def test_returns_a_named_task(self, bus: EventBus) -> None:
        """publish returns a task named after the event, whose result is the EmitReport."""

        async def handler(event: Event) -> str:
            await asyncio.sleep(0)
            return f"handled {event['n']}"

        bus.on("sale.closed", handler)

        task = bus.publish("sale.closed", source="caisse", n=3)

        assert isinstance(task, asyncio.Task)
        assert task.get_name() == "eventbus:sale.closed"
        report = await task
        assert isinstance(report, EmitReport)
        assert report.values == ("handled 3",)
        assert report.event.name == "sale.closed"
        assert report.event.source == "caisse"
        assert report.event.depth == 0

    async def test_handlers_run_later(self, bus: EventBus) -> None:
        """publish returns before any handler runs."""
        log: list[str] = []
        bus.on("x", lambda e: log.append("handler"))

        task = bus.publish("x")
        log.append("published")
        await task

        assert log == ["published", "handler"]

    def test_needs_a_running_loop(self, bus: EventBus) -> None:
        """publish outside a running loop is a RuntimeError and runs nothing."""
        log: list[str] = []
        bus.on("x", lambda e: log.append("ran"))

        with bus.record() as recorder, pytest.raises(RuntimeError, match="running event loop"):
            bus.publish("x")

        assert log == []
        assert recorder.events == []
        assert bus.listener_count("x") == 1

    async def test_bus_holds_the_task(self, bus: EventBus) -> None:
        """The bus keeps a reference to published tasks.

        A published task parked on a future only it references survives a
        collection once the caller drops it, and then finishes."""
        parked: list[weakref.ref[asyncio.Future[None]]] = []
        started = asyncio.Event()
        finished = asyncio.Event()

        async def handler(event: Event) -> None:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            parked.append(weakref.ref(future))
            started.set()
            await future
            finished.set()

        bus.on("x", handler)
        task = bus.publish("x")
        await started.wait()

        del task
        gc.collect()

        future = parked[0]()
        assert future is not None, "the published task was garbage-collected mid-flight"
        future.set_result(None)
        del future
        await asyncio.wait_for(finished.wait(), 60)

    async def test_bad_name_no_task(self, bus: EventBus) -> None:
        """A bad name raises ValueError at once, creating no task."""
        tasks_before = asyncio.all_tasks()

        with pytest.raises(ValueError, match="'bad name'"):
            bus.publish("bad name")

        assert asyncio.all_tasks() == tasks_before

    async def test_pattern_refused_at_once(self, bus: EventBus) -> None:
        """A pattern raises ValueError at once."""
        with pytest.raises(ValueError, match=r"'user\.\*'"):
            bus.publish("user.*")

    async def test_non_str_name_at_once(self, bus: EventBus) -> None:
        """A non-str name raises TypeError at once."""
        with pytest.raises(TypeError, match="str"):
            bus.publish(3)  # type: ignore[arg-type]

    async def test_non_str_source_no_task(self, bus: EventBus) -> None:
        """A non-str source raises TypeError at once, creating no task."""
        tasks_before = asyncio.all_tasks()

        with pytest.raises(TypeError, match="source must be a str"):
            bus.publish("x", source=1)  # type: ignore[arg-type]

        assert asyncio.all_tasks() == tasks_before

    async def test_closed_bus_no_task(self, bus: EventBus) -> None:
        """On a closed bus, publish raises BusClosedError at once, creating no task."""
        log: list[str] = []
        bus.on("x", lambda e: log.append("ran"))
        await bus.aclose()
        tasks_before = asyncio.all_tasks()

        with bus.record() as recorder, pytest.raises(BusClosedError, match="closed"):
            bus.publish("x")

        assert asyncio.all_tasks() == tasks_before
        assert recorder.events == []
        await asyncio.sleep(0)
        assert log == []

    async def test_nested_under_handler(self, bus: EventBus) -> None:
        """publish from a handler is nested under the handler's event."""
        children: list[Event] = []
        published: list[asyncio.Task[EmitReport]] = []

        def parent(event: Event) -> None:
            published.append(bus.publish("child"))

        bus.on("parent", parent)
        bus.on("child", children.append)

        report = await bus.emit("parent")
        await published[0]

        assert children[0].parent_id == report.event.id
        assert children[0].depth == 1


# ---------------------------------------------------------------- drain


class TestDrain:
    async def test_waits_for_all(self, bus: EventBus) -> None:
        """drain waits for every published emission."""
        done: list[int] = []

        async def handler(event: Event) -> None:
            for _ in range(event["n"]):
                await asyncio.sleep(0)
            done.append(event["n"])

        bus.on("x", handler)
        for n in (3, 1, 2):
            bus.publish("x", n=n)

        await bus.drain()

        assert sorted(done) == [1, 2, 3]

    async def test_waits_for_late(self, bus: EventBus) -> None:
        """drain waits for emissions published while draining."""
        log: list[str] = []

        async def first(event: Event) -> None:
            await asyncio.sleep(0)
            log.append("first")
            bus.publish("second")

        async def second(event: Event) -> None:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            log.append("second")
            bus.publish("third")

        async def third(event: Event) -> None:
            await asyncio.sleep(0)
            log.append("third")

        bus.on("first", first)
        bus.on("second", second)
        bus.on("third", third)
        bus.publish("first")

        await bus.drain()

        assert log == ["first", "second", "third"]

    async def test_idle(self, bus: EventBus) -> None:
        """drain with nothing published returns at once."""
        await asyncio.wait_for(bus.drain(), 60)

    async def test_ignores_failures(self, bus: EventBus) -> None:
        """drain does not raise for failed published emissions."""

        def failing(event: Event) -> None:
            raise ValueError("boom")

        bus.on("x", failing)
        task = bus.publish("x")

        await bus.drain()

        assert task.done()
        assert len(task.result().errors) == 1

    async def test_in_handler(self, bus: EventBus) -> None:
        """drain inside a published handler does not wait for its own task.

        Regression: drain() in a published handler awaited its own task and hung.
        """
        log: list[str] = []

        async def first(event: Event) -> str:
            bus.publish("second")
            await bus.drain()
            log.append("drained")
            return "drained"

        async def second(event: Event) -> None:
            await asyncio.sleep(0)
            log.append("second")

        bus.on("first", first)
        bus.on("second", second)

        report = await asyncio.wait_for(bus.publish("first"), 60)  # the timeout is a safety net

        assert report.values == ("drained",)
        assert log == ["second", "drained"]
