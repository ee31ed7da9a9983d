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


class TestNoLoop:
    def test_private_loop_per_call(self, bus: EventBus) -> None:
        """Each call runs async handlers on the bus's background loop, kept running after."""
        loops: list[asyncio.AbstractEventLoop] = []

        async def handler(event: Event) -> None:
            loops.append(asyncio.get_running_loop())

        bus.on("x", handler)

        bus.emit_sync("x")
        bus.emit_sync("x")

        assert len(loops) == 2
        assert loops[0] is loops[1]
        assert not loops[0].is_closed()

    def test_one_loop_per_call(self, bus: EventBus) -> None:
        """Without a running loop, all async handlers of one call share one loop.

        Regression: emit_sync made a new loop per async handler.
        """
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
        assert not loops[0].is_closed()  # the background loop, kept for later calls

    def test_current_loop_untouched(self, bus: EventBus) -> None:
        """Running async handlers leaves the thread's current event loop alone.

        Regression: emit_sync ran async handlers with asyncio.run, which unset the thread's loop.
        """

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


# ---------------------------------------------------------------- timeouts


class TestTimeouts:
    async def test_worker_timeouts_on_main_loop(self, bus: EventBus) -> None:
        """From a worker thread, handler timeouts apply on the main loop."""
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

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), 60)

        assert ran_on == [main_loop]
        assert saw_cancel == [True]
        assert isinstance(report.errors[0].error, TimeoutError)
        assert report.values == ("later",)


# ---------------------------------------------------------------- inside a running loop


class TestInLoop:
    async def test_sync_handlers(self, bus: EventBus) -> None:
        """Inside a running loop, sync handlers run."""
        log: list[str] = []
        bus.on("x", lambda e: log.append("first") or 1)
        bus.on("x", lambda e: log.append("second") or 2)

        report = bus.emit_sync("x")

        assert log == ["first", "second"]
        assert report.values == (1, 2)
        assert report.ok

    async def test_async_handler_refused(self, bus: EventBus) -> None:
        """An async handler is a RuntimeError raised before any handler runs."""
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

    async def test_async_pattern_refused(self, bus: EventBus) -> None:
        """Inside a running loop, an async pattern handler is refused too."""
        log: list[str] = []

        async def async_handler(event: Event) -> None:
            log.append("async")

        bus.on("x", lambda e: log.append("sync"))
        bus.on("*", async_handler)

        with pytest.raises(RuntimeError, match="async"):
            bus.emit_sync("x")

        assert log == []

    async def test_other_names_ignored(self, bus: EventBus) -> None:
        """Inside a running loop, async handlers of other names do not matter."""

        async def other(event: Event) -> None:
            pass

        bus.on("other", other)
        bus.on("x", lambda e: "sync")

        report = bus.emit_sync("x")

        assert report.values == ("sync",)

    async def test_refusal_keeps_once_handler(self, bus: EventBus) -> None:
        """Inside a running loop, the refusal does not consume a once handler.

        The refusal happens before anything runs: a once handler is not claimed."""
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

    async def test_coroutine_fails(self, bus: EventBus) -> None:
        """A sync handler returning a coroutine is that handler's failure."""
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

    async def test_refused_coroutine_no_warning(self, bus: EventBus) -> None:
        """A coroutine refused inside a running loop gives no "never awaited" warning."""

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


class _SignallingLoop(asyncio.SelectorEventLoop):
    """A loop that tells when another thread has handed it a callback."""

    def __init__(self) -> None:
        super().__init__()
        self.handed = threading.Event()

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        self.handed.set()
        return handle


class TestWorkerThread:
    async def test_uses_main_loop(self, bus: EventBus) -> None:
        """From a worker thread, async handlers run on the main loop, sync ones in the worker."""
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

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x", n=7), 60)

        assert report.values == ("sync value", "async value 7")
        (sync_kind, sync_thread, sync_loop), (async_kind, async_thread, async_loop) = seen
        assert (sync_kind, async_kind) == ("sync", "async")
        assert sync_thread != main_thread
        assert sync_loop is None
        assert async_thread == main_thread
        assert async_loop is main_loop

    async def test_plain_thread_uses_main_loop(self, bus: EventBus) -> None:
        """From a plain thread, async handlers run on the main loop."""
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
        await asyncio.to_thread(thread.join, 60)

        assert not thread.is_alive()
        assert errors == []
        assert reports[0].values == ("from main loop",)
        assert seen == [(main_thread, main_loop)]

    async def test_before_any_emit(self, bus: EventBus) -> None:
        """Before the bus emitted on any loop, async handlers run on a private loop."""
        main_loop = asyncio.get_running_loop()
        seen: list[asyncio.AbstractEventLoop] = []

        async def async_handler(event: Event) -> str:
            seen.append(asyncio.get_running_loop())
            return "private"

        bus.on("x", async_handler)

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), 60)

        assert report.values == ("private",)
        assert seen[0] is not main_loop

    async def test_chain_nested_sync(self, bus: EventBus) -> None:
        """In a worker thread, a nested emit_sync is a child of the outer emission."""
        inner_events: list[Event] = []

        def outer(event: Event) -> str:
            bus.emit_sync("inner")
            return event.id

        bus.on("outer", outer)
        bus.on("inner", inner_events.append)
        await bus.emit("warm.up")

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "outer"), 60)

        assert report.ok, report.errors
        assert inner_events[0].parent_id == report.event.id
        assert inner_events[0].depth == 1

    async def test_chain_on_main_loop(self, bus: EventBus) -> None:
        """In a worker thread, the chain follows into async handlers run on the main loop.

        An async handler run on the main loop for a worker's emit_sync is still
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

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "outer"), 60)

        assert report.ok, report.errors
        assert inner_events[0].parent_id == report.event.id
        assert inner_events[0].depth == 1
        assert awaited_events[0].parent_id == report.event.id
        assert awaited_events[0].depth == 1

    async def test_loop_refused(self, bus: EventBus) -> None:
        """In a worker thread, a loop back through the main loop is refused.

        The chain followed into the main loop also detects a loop back to the outer name."""

        async def outer(event: Event) -> None:
            await bus.emit("outer")

        bus.on("outer", outer)
        await bus.emit("warm.up")

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "outer"), 60)

        assert len(report.errors) == 1
        error = report.errors[0].error
        assert isinstance(error, ReentrancyError)
        assert error.chain == ("outer", "outer")

    async def test_main_loop_after_short_lived(self, bus: EventBus) -> None:
        """From a worker, the main loop is still used after an emit on a short-lived loop.

        Regression: the bus remembered only the last loop it emitted on, here a closed one."""
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
        await asyncio.to_thread(thread.join, 60)
        assert not thread.is_alive()
        assert len(other_loops) == 1
        assert other_loops[0] is not main_loop
        assert other_loops[0].is_closed()

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), 60)

        assert report.values == ("main",)
        assert seen == [main_loop]

    async def test_cancelled_error(self, bus: EventBus) -> None:
        """A CancelledError of a handler on the main loop propagates out of the worker's emit_sync.

        Regression: the worker got concurrent.futures.CancelledError, reported as a failure."""
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
        await asyncio.to_thread(thread.join, 60)

        assert not thread.is_alive()
        assert reports == []
        assert [type(error) for error in raised] == [asyncio.CancelledError]
        assert log == [main_loop]  # the next handler did not run

    def test_bus_loop_stops(self, bus: EventBus) -> None:
        """A handler handed to a bus loop that stops before running it runs on a private loop.

        Regression: emit_sync blocked forever on a handler handed to a loop that then stopped."""
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
            loop.handed.wait(60)
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
        assert busy.wait(60)
        worker_thread = threading.Thread(target=worker, daemon=True)
        worker_thread.start()
        loop_thread.join(60)
        worker_thread.join(60)

        assert not loop_thread.is_alive()
        assert not worker_thread.is_alive(), "emit_sync still blocked after the bus loop stopped"
        assert loop.handed.is_set()
        assert loop.is_closed()
        assert errors == []
        assert reports[0].values == ("ran",)
        assert len(seen) == 1
        assert seen[0] is not loop
