"""``bus.publish``, ``bus.drain`` and ``bus.aclose``."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest
import structlog

from eventbus import BusClosedError, EmitReport, Event, EventBus

# ---------------------------------------------------------------- publish


async def test_publish_returns_a_task_whose_result_is_the_emit_report(bus: EventBus) -> None:
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


async def test_publish_does_not_run_handlers_before_returning(bus: EventBus) -> None:
    log: list[str] = []
    bus.on("x", lambda e: log.append("handler"))

    task = bus.publish("x")
    log.append("published")
    await task

    assert log == ["published", "handler"]


def test_publish_outside_a_running_loop_is_a_runtime_error(bus: EventBus) -> None:
    log: list[str] = []
    bus.on("x", lambda e: log.append("ran"))

    with bus.record() as recorder, pytest.raises(RuntimeError, match="running event loop"):
        bus.publish("x")

    assert log == []
    assert recorder.events == []
    assert bus.listener_count("x") == 1


async def test_bus_keeps_a_reference_to_published_tasks(bus: EventBus) -> None:
    """A published task parked on a future only it references survives a
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
    await asyncio.wait_for(finished.wait(), 1)


async def test_publish_with_a_bad_name_raises_value_error_synchronously(bus: EventBus) -> None:
    tasks_before = asyncio.all_tasks()

    with pytest.raises(ValueError, match="'bad name'"):
        bus.publish("bad name")

    assert asyncio.all_tasks() == tasks_before


async def test_publish_with_a_pattern_raises_value_error_synchronously(bus: EventBus) -> None:
    with pytest.raises(ValueError, match=r"'user\.\*'"):
        bus.publish("user.*")


async def test_publish_with_a_non_str_name_raises_type_error_synchronously(bus: EventBus) -> None:
    with pytest.raises(TypeError, match="str"):
        bus.publish(3)  # type: ignore[arg-type]


async def test_publish_with_a_non_str_source_raises_type_error_synchronously(
    bus: EventBus,
) -> None:
    tasks_before = asyncio.all_tasks()

    with pytest.raises(TypeError, match="source must be a str"):
        bus.publish("x", source=1)  # type: ignore[arg-type]

    assert asyncio.all_tasks() == tasks_before


async def test_publish_on_a_closed_bus_raises_bus_closed_error_synchronously(
    bus: EventBus,
) -> None:
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


async def test_published_handler_failure_is_logged_and_reported(bus: EventBus) -> None:
    boom = ValueError("boom")

    def failing(event: Event) -> None:
        raise boom

    bus.on("x", failing)
    bus.on("x", lambda e: "after")

    with structlog.testing.capture_logs() as logs:
        report = await bus.publish("x")

    assert [r.error for r in report.errors] == [boom]
    assert report.values == ("after",)
    failures = [entry for entry in logs if entry["event"] == "eventbus.handler_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "error"
    assert failures[0]["exc_info"] is boom
    assert failures[0]["event_name"] == "x"
    assert failures[0]["event_id"] == report.event.id


async def test_publish_from_a_handler_is_nested_under_its_event(bus: EventBus) -> None:
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


async def test_drain_waits_for_every_published_emission(bus: EventBus) -> None:
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


async def test_drain_waits_for_emissions_published_while_draining(bus: EventBus) -> None:
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


async def test_drain_with_nothing_published_returns_at_once(bus: EventBus) -> None:
    await asyncio.wait_for(bus.drain(), 1)


async def test_drain_does_not_raise_for_failed_published_emissions(bus: EventBus) -> None:
    def failing(event: Event) -> None:
        raise ValueError("boom")

    bus.on("x", failing)
    task = bus.publish("x")

    await bus.drain()

    assert task.done()
    assert len(task.result().errors) == 1


async def test_drain_inside_a_published_handler_does_not_wait_for_its_own_task(
    bus: EventBus,
) -> None:
    """Regression: drain() in a published handler awaited its own task and hung."""
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

    report = await asyncio.wait_for(bus.publish("first"), 2)  # the timeout is a safety net

    assert report.values == ("drained",)
    assert log == ["second", "drained"]


# ---------------------------------------------------------------- aclose


async def test_new_top_level_emissions_are_refused_as_soon_as_aclose_is_called(
    bus: EventBus,
) -> None:
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
        await bus.emit("other")
    with pytest.raises(BusClosedError, match="closed"):
        bus.emit_sync("other")
    with pytest.raises(BusClosedError, match="closed"):
        bus.publish("other")
    assert log == []

    gate.set()
    await asyncio.wait_for(closing, 1)
    assert (await emitting).values == ("finished",)


async def test_handlers_of_accepted_emissions_may_still_emit_and_publish_while_closing(
    bus: EventBus,
) -> None:
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
    await asyncio.wait_for(closing, 1)

    report = await emitting
    assert report.ok, report.errors
    assert log == ["chain.emitted", "chain.emitted-sync", "chain.published"]


async def test_aclose_returns_only_when_published_emissions_are_done(bus: EventBus) -> None:
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
    await asyncio.wait_for(closing, 1)
    assert finished == ["x"]


async def test_aclose_waits_for_emissions_published_by_handlers_while_closing(
    bus: EventBus,
) -> None:
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
    await asyncio.wait_for(closing, 1)

    assert finished == ["second"]


async def test_aclose_with_nothing_in_flight_returns_at_once(bus: EventBus) -> None:
    await asyncio.wait_for(bus.aclose(), 1)

    assert bus.closed is True


async def test_every_emission_is_refused_after_aclose_returned(bus: EventBus) -> None:
    log: list[str] = []
    bus.on("x", lambda e: log.append("ran"))

    await bus.aclose()

    with bus.record() as recorder:
        with pytest.raises(BusClosedError, match="closed"):
            await bus.emit("x")
        with pytest.raises(BusClosedError, match="closed"):
            bus.emit_sync("x")
        with pytest.raises(BusClosedError, match="closed"):
            bus.publish("x")
    assert log == []
    assert recorder.events == []


async def test_emission_from_a_late_handler_task_is_refused_after_aclose_returned(
    bus: EventBus,
) -> None:
    """A task spawned by a handler (untracked) carries the chain, yet once
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

    await asyncio.wait_for(bus.aclose(), 1)
    gate.set()
    await asyncio.wait_for(spawned[0], 1)

    assert len(outcome) == 1
    assert isinstance(outcome[0], BusClosedError)


async def test_aclose_twice_is_harmless(bus: EventBus) -> None:
    await bus.aclose()
    await bus.aclose()

    assert bus.closed is True
    with pytest.raises(BusClosedError):
        await bus.emit("x")


async def test_concurrent_aclose_calls_both_wait_for_accepted_emissions(bus: EventBus) -> None:
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
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert finished == ["done"]


async def test_async_with_closes_the_bus_on_exit() -> None:
    async with EventBus("ctx") as bus:
        assert isinstance(bus, EventBus)
        bus.on("x", lambda e: "ran")
        report = await bus.emit("x")
        assert report.values == ("ran",)
        assert bus.closed is False

    assert bus.closed is True
    with pytest.raises(BusClosedError, match="closed"):
        await bus.emit("x")


async def test_async_with_waits_for_published_emissions_on_exit() -> None:
    finished: list[str] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        finished.append("done")

    async with EventBus("ctx") as bus:
        bus.on("x", handler)
        bus.publish("x")

    assert finished == ["done"]


async def test_aclose_from_inside_a_handler_is_that_handlers_failure(bus: EventBus) -> None:
    async def closes(event: Event) -> None:
        await bus.aclose()

    bus.on("x", closes)
    bus.on("x", lambda e: "after")

    report = await asyncio.wait_for(bus.emit("x"), 1)

    assert report.values == ("after",)
    assert len(report.errors) == 1
    assert isinstance(report.errors[0].error, RuntimeError)
    assert "handler" in str(report.errors[0].error)
    assert bus.closed is False
    assert (await bus.emit("x")).values == ("after",)


async def test_aclose_from_inside_a_published_handler_is_that_handlers_failure(
    bus: EventBus,
) -> None:
    async def closes(event: Event) -> None:
        await bus.aclose()

    bus.on("x", closes)

    report = await asyncio.wait_for(bus.publish("x"), 1)

    assert isinstance(report.errors[0].error, RuntimeError)
    assert bus.closed is False


async def test_emit_sync_from_a_thread_started_before_aclose_finishes_before_aclose_returns(
    bus: EventBus,
) -> None:
    entered = threading.Event()
    release = threading.Event()
    handler_finished = threading.Event()
    reports: list[EmitReport] = []
    errors: list[BaseException] = []

    def blocking(event: Event) -> str:
        entered.set()
        release.wait(2)
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
        assert await asyncio.to_thread(entered.wait, 2)

        closing = asyncio.create_task(bus.aclose())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not closing.done()
        with pytest.raises(BusClosedError):
            bus.emit_sync("x")

        release.set()
        await asyncio.wait_for(closing, 2)
        assert handler_finished.is_set()
    finally:
        release.set()
        thread.join(2)
    assert not thread.is_alive()
    assert errors == []
    assert reports[0].values == ("thread done",)


async def test_aclose_waits_for_an_async_on_error_started_by_emit_sync_in_the_loop() -> None:
    """Regression: aclose did not wait for the on_error task that emit_sync left running."""
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
    await asyncio.wait_for(closing, 2)

    assert reported == ["x: boom"]
