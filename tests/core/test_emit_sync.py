"""``bus.emit_sync``: from plain sync code, inside a running loop, and from worker threads."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import warnings
from typing import Any

import pytest
import structlog

from eventbus import EmitReport, Event, EventBus, ReentrancyError

# ---------------------------------------------------------------- no running loop


def test_emit_sync_without_a_loop_runs_sync_and_async_handlers_in_order(bus: EventBus) -> None:
    log: list[str] = []

    def sync_handler(event: Event) -> str:
        log.append("sync")
        return f"sync {event['n']}"

    async def async_handler(event: Event) -> str:
        log.append("async:start")
        await asyncio.sleep(0)
        log.append("async:end")
        return f"async {event['n']}"

    def last(event: Event) -> str:
        log.append("last")
        return "last"

    bus.on("x", sync_handler)
    bus.on("x", async_handler)
    bus.on("x", last)

    report = bus.emit_sync("x", n=1)

    assert isinstance(report, EmitReport)
    assert log == ["sync", "async:start", "async:end", "last"]
    assert report.values == ("sync 1", "async 1", "last")
    assert report.ok


def test_emit_sync_without_a_loop_runs_async_handlers_on_a_private_loop_per_call(
    bus: EventBus,
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def handler(event: Event) -> None:
        loops.append(asyncio.get_running_loop())

    bus.on("x", handler)

    bus.emit_sync("x")
    bus.emit_sync("x")

    assert len(loops) == 2
    assert loops[0] is not loops[1]
    assert all(loop.is_closed() for loop in loops)


def test_emit_sync_without_a_loop_runs_all_async_handlers_of_one_call_on_one_loop(
    bus: EventBus,
) -> None:
    """Regression: emit_sync made a new loop per async handler."""
    loops: list[asyncio.AbstractEventLoop] = []
    shared: list[asyncio.Future[str]] = []

    async def first(event: Event) -> None:
        loops.append(asyncio.get_running_loop())
        shared.append(asyncio.get_running_loop().create_future())

    async def second(event: Event) -> str:
        loops.append(asyncio.get_running_loop())
        asyncio.get_running_loop().call_soon(shared[0].set_result, "made by first")
        return await shared[0]  # a future of the first handler's loop

    bus.on("x", first)
    bus.on("x", second)

    report = bus.emit_sync("x")

    assert report.ok, report.errors
    assert report.values == (None, "made by first")
    assert len(loops) == 2
    assert loops[0] is loops[1]
    assert loops[0].is_closed()


def test_emit_sync_with_async_handlers_leaves_the_threads_current_event_loop_alone(
    bus: EventBus,
) -> None:
    """Regression: emit_sync ran async handlers with asyncio.run, which unset the thread's loop."""

    async def handler(event: Event) -> str:
        return "async"

    bus.on("x", handler)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        report = bus.emit_sync("x")

        assert report.values == ("async",)
        assert asyncio.get_event_loop() is loop
        assert not loop.is_closed()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_emit_sync_without_a_loop_fills_the_event_and_report(bus: EventBus) -> None:
    bus.on("x", lambda e: e["a"])

    report = bus.emit_sync("x", source="cli", a=5, name="n")

    assert report.values == (5,)
    assert report.event.name == "x"
    assert report.event.source == "cli"
    assert dict(report.event.payload) == {"a": 5, "name": "n"}
    assert report.event.depth == 0
    assert report.event.parent_id is None


def test_emit_sync_isolates_a_failing_async_handler(bus: EventBus) -> None:
    async def failing(event: Event) -> None:
        await asyncio.sleep(0)
        raise ValueError("async boom")

    bus.on("x", failing)
    bus.on("x", lambda e: "after")

    report = bus.emit_sync("x")

    assert report.values == ("after",)
    assert isinstance(report.errors[0].error, ValueError)


def test_emit_sync_without_a_loop_awaits_a_coroutine_returned_by_a_sync_handler(
    bus: EventBus,
) -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "awaited"

    bus.on("x", lambda e: work())

    report = bus.emit_sync("x")

    assert report.values == ("awaited",)


def test_emit_sync_with_a_non_str_source_is_a_type_error(bus: EventBus) -> None:
    log: list[str] = []
    bus.on("x", lambda e: log.append("ran"))

    with bus.record() as recorder, pytest.raises(TypeError, match="source must be a str"):
        bus.emit_sync("x", source=1)  # type: ignore[arg-type]

    assert log == []
    assert recorder.events == []


def test_keyboard_interrupt_in_a_handler_propagates_out_of_emit_sync(bus: EventBus) -> None:
    log: list[str] = []

    def interrupts(event: Event) -> None:
        raise KeyboardInterrupt("stop")

    bus.on("x", interrupts)
    bus.on("x", lambda e: log.append("later"))

    with pytest.raises(KeyboardInterrupt, match="stop"):
        bus.emit_sync("x")

    assert log == []


# ---------------------------------------------------------------- timeouts


def test_emit_sync_cancels_an_async_handler_past_its_timeout(bus: EventBus) -> None:
    saw_cancel: list[bool] = []

    async def hangs(event: Event) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.append(True)
            raise

    bus.on("x", hangs, timeout=0.02)
    bus.on("x", lambda e: "later")

    report = bus.emit_sync("x")

    assert saw_cancel == [True]
    assert isinstance(report.errors[0].error, TimeoutError)
    assert report.values == ("later",)


def test_emit_sync_applies_the_bus_handler_timeout() -> None:
    bus = EventBus("test", handler_timeout=0.02)
    saw_cancel: list[bool] = []

    async def hangs(event: Event) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.append(True)
            raise

    bus.on("x", hangs)

    report = bus.emit_sync("x")

    assert saw_cancel == [True]
    assert len(report.errors) == 1
    assert isinstance(report.errors[0].error, TimeoutError)


async def test_emit_sync_from_a_worker_thread_applies_timeouts_on_the_main_loop(
    bus: EventBus,
) -> None:
    saw_cancel: list[bool] = []
    main_loop = asyncio.get_running_loop()
    ran_on: list[asyncio.AbstractEventLoop] = []

    async def hangs(event: Event) -> None:
        ran_on.append(asyncio.get_running_loop())
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.append(True)
            raise

    await bus.emit("warm.up")
    bus.on("x", hangs, timeout=0.02)
    bus.on("x", lambda e: "later")

    report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), 2)

    assert ran_on == [main_loop]
    assert saw_cancel == [True]
    assert isinstance(report.errors[0].error, TimeoutError)
    assert report.values == ("later",)


# ---------------------------------------------------------------- inside a running loop


async def test_emit_sync_inside_a_running_loop_with_only_sync_handlers_works(
    bus: EventBus,
) -> None:
    log: list[str] = []
    bus.on("x", lambda e: log.append("first") or 1)
    bus.on("x", lambda e: log.append("second") or 2)

    report = bus.emit_sync("x")

    assert log == ["first", "second"]
    assert report.values == (1, 2)
    assert report.ok


async def test_emit_sync_inside_a_running_loop_with_an_async_handler_raises_before_running_any(
    bus: EventBus,
) -> None:
    log: list[str] = []

    async def async_handler(event: Event) -> None:
        log.append("async")

    bus.on("x", lambda e: log.append("sync before"), priority=10)
    bus.on("x", async_handler)
    bus.on("x", lambda e: log.append("sync after"), priority=-10)

    with (
        structlog.testing.capture_logs() as logs,
        bus.record() as recorder,
        pytest.raises(RuntimeError, match=r"await bus\.emit|bus\.publish"),
    ):
        bus.emit_sync("x")

    assert log == []
    assert recorder.events == []
    assert logs == []
    assert bus.listener_count("x") == 3


async def test_emit_sync_inside_a_running_loop_with_an_async_pattern_handler_raises(
    bus: EventBus,
) -> None:
    log: list[str] = []

    async def async_handler(event: Event) -> None:
        log.append("async")

    bus.on("x", lambda e: log.append("sync"))
    bus.on("*", async_handler)

    with pytest.raises(RuntimeError, match="async"):
        bus.emit_sync("x")

    assert log == []


async def test_emit_sync_inside_a_running_loop_ignores_async_handlers_of_other_names(
    bus: EventBus,
) -> None:
    async def other(event: Event) -> None:
        pass

    bus.on("other", other)
    bus.on("x", lambda e: "sync")

    report = bus.emit_sync("x")

    assert report.values == ("sync",)


async def test_emit_sync_inside_a_running_loop_does_not_consume_a_once_handler(
    bus: EventBus,
) -> None:
    """The refusal happens before anything runs: a once handler is not claimed."""
    log: list[str] = []

    async def async_handler(event: Event) -> None:
        log.append("async")

    bus.once("x", lambda e: log.append("once"), priority=1)
    bus.on("x", async_handler)

    with pytest.raises(RuntimeError):
        bus.emit_sync("x")
    report = await bus.emit("x")

    assert log == ["once", "async"]
    assert len(report.results) == 2


async def test_sync_handler_returning_a_coroutine_under_emit_sync_in_a_loop_is_its_failure(
    bus: EventBus,
) -> None:
    started: list[bool] = []
    coroutines: list[Any] = []
    log: list[str] = []

    async def work() -> str:
        started.append(True)
        return "never"

    def returns_coroutine(event: Event) -> Any:
        coroutine = work()
        coroutines.append(coroutine)
        return coroutine

    bus.on("x", lambda e: log.append("before") or "before")
    bus.on("x", returns_coroutine)
    bus.on("x", lambda e: log.append("after") or "after")

    report = bus.emit_sync("x")

    assert log == ["before", "after"]
    assert report.values == ("before", "after")
    assert len(report.errors) == 1
    assert report.errors[0].handler.name.endswith("returns_coroutine")
    assert isinstance(report.errors[0].error, RuntimeError)
    assert started == []
    assert inspect.getcoroutinestate(coroutines[0]) == inspect.CORO_CLOSED


async def test_coroutine_refused_by_emit_sync_in_a_loop_gives_no_never_awaited_warning(
    bus: EventBus,
) -> None:
    async def work() -> None:
        pass

    bus.on("x", lambda e: work())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = bus.emit_sync("x")
        del report
        gc.collect()

    assert [str(w.message) for w in caught] == []


# ---------------------------------------------------------------- from a worker thread


async def test_emit_sync_from_a_worker_thread_runs_async_handlers_on_the_main_loop(
    bus: EventBus,
) -> None:
    main_loop = asyncio.get_running_loop()
    main_thread = threading.get_ident()
    seen: list[tuple[str, int, asyncio.AbstractEventLoop | None]] = []

    def sync_handler(event: Event) -> str:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        seen.append(("sync", threading.get_ident(), loop))
        return "sync value"

    async def async_handler(event: Event) -> str:
        await asyncio.sleep(0)
        seen.append(("async", threading.get_ident(), asyncio.get_running_loop()))
        return f"async value {event['n']}"

    await bus.emit("warm.up")  # the bus has now emitted on this (still running) loop
    bus.on("x", sync_handler)
    bus.on("x", async_handler)

    report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x", n=7), 2)

    assert report.values == ("sync value", "async value 7")
    (sync_kind, sync_thread, sync_loop), (async_kind, async_thread, async_loop) = seen
    assert (sync_kind, async_kind) == ("sync", "async")
    assert sync_thread != main_thread
    assert sync_loop is None
    assert async_thread == main_thread
    assert async_loop is main_loop


async def test_emit_sync_from_a_plain_thread_runs_async_handlers_on_the_main_loop(
    bus: EventBus,
) -> None:
    main_loop = asyncio.get_running_loop()
    main_thread = threading.get_ident()
    seen: list[tuple[int, asyncio.AbstractEventLoop]] = []
    reports: list[EmitReport] = []
    errors: list[BaseException] = []

    async def async_handler(event: Event) -> str:
        seen.append((threading.get_ident(), asyncio.get_running_loop()))
        return "from main loop"

    def worker() -> None:
        try:
            reports.append(bus.emit_sync("x"))
        except BaseException as error:
            errors.append(error)

    await bus.emit("warm.up")
    bus.on("x", async_handler)

    thread = threading.Thread(target=worker)
    thread.start()
    await asyncio.wait_for(asyncio.to_thread(thread.join, 2), 3)

    assert not thread.is_alive()
    assert errors == []
    assert reports[0].values == ("from main loop",)
    assert seen == [(main_thread, main_loop)]


async def test_emit_sync_from_a_worker_thread_before_any_emit_uses_a_private_loop(
    bus: EventBus,
) -> None:
    main_loop = asyncio.get_running_loop()
    seen: list[asyncio.AbstractEventLoop] = []

    async def async_handler(event: Event) -> str:
        seen.append(asyncio.get_running_loop())
        return "private"

    bus.on("x", async_handler)

    report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), 2)

    assert report.values == ("private",)
    assert seen[0] is not main_loop


async def test_emit_sync_in_a_worker_thread_keeps_the_chain_for_a_nested_sync_emit(
    bus: EventBus,
) -> None:
    inner_events: list[Event] = []

    def outer(event: Event) -> str:
        bus.emit_sync("inner")
        return event.id

    bus.on("outer", outer)
    bus.on("inner", inner_events.append)
    await bus.emit("warm.up")

    report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "outer"), 2)

    assert report.ok, report.errors
    assert inner_events[0].parent_id == report.event.id
    assert inner_events[0].depth == 1


async def test_emit_sync_in_a_worker_thread_keeps_the_chain_into_async_handlers_on_the_main_loop(
    bus: EventBus,
) -> None:
    """An async handler run on the main loop for a worker's emit_sync is still
    inside that emission: what it emits is nested under it."""
    inner_events: list[Event] = []
    awaited_events: list[Event] = []

    async def outer(event: Event) -> None:
        bus.emit_sync("inner")  # only sync handlers: allowed inside the running loop
        await bus.emit("awaited")

    async def awaited(event: Event) -> None:
        awaited_events.append(event)

    bus.on("outer", outer)
    bus.on("inner", inner_events.append)
    bus.on("awaited", awaited)
    await bus.emit("warm.up")

    report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "outer"), 2)

    assert report.ok, report.errors
    assert inner_events[0].parent_id == report.event.id
    assert inner_events[0].depth == 1
    assert awaited_events[0].parent_id == report.event.id
    assert awaited_events[0].depth == 1


async def test_emit_sync_in_a_worker_thread_refuses_a_loop_back_through_the_main_loop(
    bus: EventBus,
) -> None:
    """The chain followed into the main loop also detects a loop back to the outer name."""

    async def outer(event: Event) -> None:
        await bus.emit("outer")

    bus.on("outer", outer)
    await bus.emit("warm.up")

    report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "outer"), 2)

    assert len(report.errors) == 1
    error = report.errors[0].error
    assert isinstance(error, ReentrancyError)
    assert error.chain == ("outer", "outer")


async def test_emit_sync_from_a_worker_still_uses_the_main_loop_after_an_emit_on_a_short_lived_loop(
    bus: EventBus,
) -> None:
    """Regression: the bus remembered only the last loop it emitted on, here a closed one."""
    main_loop = asyncio.get_running_loop()
    other_loops: list[asyncio.AbstractEventLoop] = []
    seen: list[asyncio.AbstractEventLoop] = []

    async def on_other(event: Event) -> None:
        other_loops.append(asyncio.get_running_loop())

    async def handler(event: Event) -> str:
        seen.append(asyncio.get_running_loop())
        return "main"

    bus.on("other", on_other)
    bus.on("x", handler)
    await bus.emit("warm.up")  # the bus has emitted on this (still running) loop
    thread = threading.Thread(target=lambda: asyncio.run(bus.emit("other")))
    thread.start()
    await asyncio.to_thread(thread.join, 2)
    assert not thread.is_alive()
    assert len(other_loops) == 1
    assert other_loops[0] is not main_loop
    assert other_loops[0].is_closed()

    report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), 2)

    assert report.values == ("main",)
    assert seen == [main_loop]


async def test_cancelled_error_of_a_handler_on_the_main_loop_propagates_out_of_a_workers_emit_sync(
    bus: EventBus,
) -> None:
    """Regression: the worker got concurrent.futures.CancelledError, reported as a failure."""
    main_loop = asyncio.get_running_loop()
    log: list[object] = []
    raised: list[BaseException] = []
    reports: list[EmitReport] = []

    async def cancelled(event: Event) -> None:
        log.append(asyncio.get_running_loop())
        raise asyncio.CancelledError

    def worker() -> None:
        try:
            reports.append(bus.emit_sync("x"))
        except BaseException as error:
            raised.append(error)

    bus.on("x", cancelled)
    bus.on("x", lambda e: log.append("next handler"))
    await bus.emit("warm.up")

    thread = threading.Thread(target=worker)
    thread.start()
    await asyncio.to_thread(thread.join, 2)

    assert not thread.is_alive()
    assert reports == []
    assert [type(error) for error in raised] == [asyncio.CancelledError]
    assert log == [main_loop]  # the next handler did not run


class _SignallingLoop(asyncio.SelectorEventLoop):
    """A loop that tells when another thread has handed it a callback."""

    def __init__(self) -> None:
        super().__init__()
        self.handed = threading.Event()

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        self.handed.set()
        return handle


def test_emit_sync_runs_a_handler_on_a_private_loop_when_the_bus_loop_stops_before_running_it(
    bus: EventBus,
) -> None:
    """Regression: emit_sync blocked forever on a handler handed to a loop that then stopped."""
    loop = _SignallingLoop()
    busy = threading.Event()
    seen: list[asyncio.AbstractEventLoop] = []
    reports: list[EmitReport] = []
    errors: list[BaseException] = []

    async def handler(event: Event) -> str:
        seen.append(asyncio.get_running_loop())
        return "ran"

    def hold_then_stop() -> None:  # the loop is busy until the handler is queued, then stops
        busy.set()
        loop.handed.wait(5)
        loop.stop()

    def run_bus_loop() -> None:
        try:
            loop.run_until_complete(bus.emit("warm.up"))  # the bus has emitted on `loop`
            loop.call_soon(hold_then_stop)
            loop.run_forever()
        finally:
            loop.close()

    def worker() -> None:
        try:
            reports.append(bus.emit_sync("x"))
        except BaseException as error:
            errors.append(error)

    bus.on("x", handler)
    loop_thread = threading.Thread(target=run_bus_loop, daemon=True)
    loop_thread.start()
    assert busy.wait(5)
    worker_thread = threading.Thread(target=worker, daemon=True)
    worker_thread.start()
    loop_thread.join(5)
    worker_thread.join(5)

    assert not loop_thread.is_alive()
    assert not worker_thread.is_alive(), "emit_sync still blocked after the bus loop stopped"
    assert loop.handed.is_set()
    assert loop.is_closed()
    assert errors == []
    assert reports[0].values == ("ran",)
    assert len(seen) == 1
    assert seen[0] is not loop
