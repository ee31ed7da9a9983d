"""``bus.aclose`` and ``async with``: what is refused, what is waited for."""

from __future__ import annotations

import asyncio
import threading

import pytest
from emitters import Emitter

from eventbus import BusClosedError, EmitReport, Event, EventBus


async def test_refuses_at_once(bus: EventBus, emit: Emitter) -> None:
    """New top-level emissions are refused as soon as aclose is called."""
    gate = asyncio.Event()
    started = asyncio.Event()
    log: list[str] = []

    async def blocked(event: Event) -> str:
        started.set()
        await gate.wait()
        return "finished"

    bus.on("slow", blocked)
    bus.on("other", lambda e: log.append("other ran"))
    emitting = asyncio.create_task(bus.emit("slow"))
    await started.wait()

    closing = asyncio.create_task(bus.aclose())
    await asyncio.sleep(0)  # let aclose start

    assert bus.closed is True
    assert not closing.done()
    with pytest.raises(BusClosedError, match="closed"):
        await emit(bus, "other")
    assert log == []

    gate.set()
    await asyncio.wait_for(closing, 60)
    assert (await emitting).values == ("finished",)


async def test_handlers_may_still_emit(bus: EventBus) -> None:
    """Handlers of accepted emissions may still emit and publish while closing."""
    gate = asyncio.Event()
    started = asyncio.Event()
    log: list[str] = []

    async def blocked(event: Event) -> None:
        started.set()
        await gate.wait()
        await bus.emit("chain.emitted")
        bus.emit_sync("chain.emitted-sync")
        bus.publish("chain.published")

    async def published(event: Event) -> None:
        await asyncio.sleep(0)
        log.append(event.name)

    bus.on("slow", blocked)
    bus.on("chain.emitted", lambda e: log.append(e.name))
    bus.on("chain.emitted-sync", lambda e: log.append(e.name))
    bus.on("chain.published", published)
    emitting = asyncio.create_task(bus.emit("slow"))
    await started.wait()

    closing = asyncio.create_task(bus.aclose())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(closing, 60)

    report = await emitting
    assert report.ok, report.errors
    assert log == ["chain.emitted", "chain.emitted-sync", "chain.published"]


async def test_waits_for_published(bus: EventBus) -> None:
    """aclose returns only when published emissions are done."""
    gate = asyncio.Event()
    finished: list[str] = []

    async def blocked(event: Event) -> None:
        await gate.wait()
        finished.append(event.name)

    bus.on("x", blocked)
    bus.publish("x")

    closing = asyncio.create_task(bus.aclose())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not closing.done()
    assert finished == []

    gate.set()
    await asyncio.wait_for(closing, 60)
    assert finished == ["x"]


async def test_waits_for_late_publishes(bus: EventBus) -> None:
    """aclose waits for emissions published by handlers while closing."""
    gate = asyncio.Event()
    finished: list[str] = []

    async def first(event: Event) -> None:
        await gate.wait()
        bus.publish("second")

    async def second(event: Event) -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        finished.append("second")

    bus.on("first", first)
    bus.on("second", second)
    bus.publish("first")

    closing = asyncio.create_task(bus.aclose())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(closing, 60)

    assert finished == ["second"]


async def test_idle(bus: EventBus) -> None:
    """aclose with nothing in flight returns at once."""
    await asyncio.wait_for(bus.aclose(), 60)

    assert bus.closed is True


async def test_refuses_after(bus: EventBus, emit: Emitter) -> None:
    """Every emission is refused once aclose returned."""
    log: list[str] = []
    bus.on("x", lambda e: log.append("ran"))

    await bus.aclose()

    with bus.record() as recorder, pytest.raises(BusClosedError, match="closed"):
        await emit(bus, "x")
    assert log == []
    assert recorder.events == []


async def test_late_task_refused(bus: EventBus) -> None:
    """An emission from a late handler task is refused once aclose returned.

    A task spawned by a handler (untracked) carries the chain, yet once
    aclose has returned even its emissions are refused."""
    gate = asyncio.Event()
    outcome: list[BaseException | EmitReport] = []
    spawned: list[asyncio.Task[None]] = []

    async def late() -> None:
        await gate.wait()
        try:
            outcome.append(await bus.emit("late"))
        except BusClosedError as error:
            outcome.append(error)

    def spawner(event: Event) -> None:
        spawned.append(asyncio.create_task(late()))

    bus.on("x", spawner)
    bus.on("late", lambda e: "late ran")
    await bus.emit("x")

    await asyncio.wait_for(bus.aclose(), 60)
    gate.set()
    await asyncio.wait_for(spawned[0], 60)

    assert len(outcome) == 1
    assert isinstance(outcome[0], BusClosedError)


async def test_twice(bus: EventBus) -> None:
    """aclose twice is harmless."""
    await bus.aclose()
    await bus.aclose()

    assert bus.closed is True
    with pytest.raises(BusClosedError):
        await bus.emit("x")


async def test_concurrent_calls(bus: EventBus) -> None:
    """Concurrent aclose calls both wait for accepted emissions."""
    gate = asyncio.Event()
    finished: list[str] = []

    async def blocked(event: Event) -> None:
        await gate.wait()
        finished.append("done")

    bus.on("x", blocked)
    bus.publish("x")

    first = asyncio.create_task(bus.aclose())
    second = asyncio.create_task(bus.aclose())
    await asyncio.sleep(0)
    assert not first.done()
    assert not second.done()

    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), 60)
    assert finished == ["done"]


async def test_async_with() -> None:
    """``async with`` closes the bus on exit."""
    async with EventBus("ctx") as bus:
        assert isinstance(bus, EventBus)
        bus.on("x", lambda e: "ran")
        report = await bus.emit("x")
        assert report.values == ("ran",)
        assert bus.closed is False

    assert bus.closed is True
    with pytest.raises(BusClosedError, match="closed"):
        await bus.emit("x")


async def test_async_with_waits() -> None:
    """``async with`` waits for published emissions on exit."""
    finished: list[str] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        finished.append("done")

    async with EventBus("ctx") as bus:
        bus.on("x", handler)
        bus.publish("x")

    assert finished == ["done"]


async def test_inside_a_handler(bus: EventBus) -> None:
    """aclose from inside a handler is that handler's failure."""

    async def closes(event: Event) -> None:
        await bus.aclose()

    bus.on("x", closes)
    bus.on("x", lambda e: "after")

    report = await asyncio.wait_for(bus.emit("x"), 60)

    assert report.values == ("after",)
    assert len(report.errors) == 1
    assert isinstance(report.errors[0].error, RuntimeError)
    assert "handler" in str(report.errors[0].error)
    assert bus.closed is False
    assert (await bus.emit("x")).values == ("after",)


async def test_inside_published_handler(bus: EventBus) -> None:
    """aclose from inside a published handler is that handler's failure."""

    async def closes(event: Event) -> None:
        await bus.aclose()

    bus.on("x", closes)

    report = await asyncio.wait_for(bus.publish("x"), 60)

    assert isinstance(report.errors[0].error, RuntimeError)
    assert bus.closed is False


async def test_waits_for_a_thread(bus: EventBus) -> None:
    """emit_sync from a thread started before aclose finishes before aclose returns."""
    entered = threading.Event()
    release = threading.Event()
    handler_finished = threading.Event()
    reports: list[EmitReport] = []
    errors: list[BaseException] = []

    def blocking(event: Event) -> str:
        entered.set()
        release.wait(60)
        handler_finished.set()
        return "thread done"

    def worker() -> None:
        try:
            reports.append(bus.emit_sync("x"))
        except BaseException as error:
            errors.append(error)

    bus.on("x", blocking)
    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert await asyncio.to_thread(entered.wait, 60)

        closing = asyncio.create_task(bus.aclose())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not closing.done()
        with pytest.raises(BusClosedError):
            bus.emit_sync("x")

        release.set()
        await asyncio.wait_for(closing, 60)
        assert handler_finished.is_set()
    finally:
        release.set()
        thread.join(60)
    assert not thread.is_alive()
    assert errors == []
    assert reports[0].values == ("thread done",)


async def test_waits_for_async_on_error() -> None:
    """aclose waits for an async on_error started by emit_sync in the loop.

    Regression: aclose did not wait for the on_error task that emit_sync left running.
    """
    release = asyncio.Event()
    reported: list[str] = []

    async def on_error(event: Event, info: object, error: Exception) -> None:
        await release.wait()
        reported.append(f"{event.name}: {error}")

    def failing(event: Event) -> None:
        raise ValueError("boom")

    bus = EventBus("test", on_error=on_error)
    bus.on("x", failing)
    report = bus.emit_sync("x")  # only a sync handler: allowed inside the loop
    assert len(report.errors) == 1

    closing = asyncio.create_task(bus.aclose())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not closing.done()
    assert reported == []

    release.set()
    await asyncio.wait_for(closing, 60)

    assert reported == ["x: boom"]
