"""What every way of emitting does: dispatch order, isolation, reports, timeouts, on_error.

Each test runs under ``await bus.emit``, ``bus.emit_sync`` and ``bus.publish`` through the
``emit`` fixture (tests/conftest.py); what only one of them does lives in
test_emit.py, test_emit_sync.py and test_publish.py.
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from emitters import Emitter

from eventbus import EmitReport, Event, EventBus, HandlerInfo, HandlerResult

LOOP_MODES = pytest.mark.parametrize("emit", ["emit", "publish"], indirect=True)
RAISING_MODES = pytest.mark.parametrize("emit", ["emit", "emit_sync"], indirect=True)


async def _hang_until_cancelled(saw_cancel: list[bool]) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        saw_cancel.append(True)
        raise


class TestDispatch:
    async def test_one_at_a_time_in_order(self, bus: EventBus, emit: Emitter) -> None:
        """Handlers run one at a time, in subscription order."""
        log: list[str] = []

        async def first(event: Event) -> None:
            log.append("first:start")
            await asyncio.sleep(0)
            log.append("first:after-yield")
            await asyncio.sleep(0)
            log.append("first:end")

        def second(event: Event) -> None:
            log.append("second")

        async def third(event: Event) -> None:
            log.append("third:start")
            await asyncio.sleep(0)
            log.append("third:end")

        bus.on("x", first)
        bus.on("x", second)
        bus.on("x", third)

        await emit(bus, "x")

        assert log == [
            "first:start",
            "first:after-yield",
            "first:end",
            "second",
            "third:start",
            "third:end",
        ]

    async def test_priority_first(self, bus: EventBus, emit: Emitter) -> None:
        """Higher-priority handlers run first."""
        log: list[str] = []
        bus.on("x", lambda e: log.append("low"), priority=-1)
        bus.on("x", lambda e: log.append("normal"))
        bus.on("x", lambda e: log.append("high"), priority=5)

        await emit(bus, "x")

        assert log == ["high", "normal", "low"]

    async def test_sync_and_async_handlers(self, bus: EventBus, emit: Emitter) -> None:
        """Sync handlers are called and async handlers awaited, in order."""
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

        report = await emit(bus, "x", n=1)

        assert isinstance(report, EmitReport)
        assert log == ["sync", "async:start", "async:end", "last"]
        assert report.values == ("sync 1", "async 1", "last")
        assert report.ok

    async def test_returns_a_report(self, bus: EventBus, emit: Emitter) -> None:
        """An emission gives an EmitReport of HandlerResults."""
        bus.on("x", lambda e: 1)

        report = await emit(bus, "x")

        assert isinstance(report, EmitReport)
        assert all(isinstance(result, HandlerResult) for result in report.results)

    async def test_no_subscribers(self, bus: EventBus, emit: Emitter) -> None:
        """An emission nobody listens to gives an empty, ok report."""
        report = await emit(bus, "nobody.listens", a=1)

        assert report.ok is True
        assert report.results == ()
        assert report.errors == ()
        assert report.values == ()
        assert report.raise_errors() is None
        assert report.event.name == "nobody.listens"
        assert report.event["a"] == 1


class TestIsolation:
    async def test_failure_does_not_stop_others(self, bus: EventBus, emit: Emitter) -> None:
        """A failing handler does not stop the others; the report holds its error."""
        log: list[str] = []
        boom = ValueError("boom")

        def before(event: Event) -> str:
            log.append("before")
            return "b"

        def failing(event: Event) -> None:
            log.append("failing")
            raise boom

        async def after(event: Event) -> str:
            log.append("after")
            return "a"

        bus.on("x", before)
        bus.on("x", failing)
        bus.on("x", after)

        report = await emit(bus, "x")

        assert log == ["before", "failing", "after"]
        assert report.ok is False
        assert [r.error for r in report.errors] == [boom]
        assert report.values == ("b", "a")
        assert [r.error for r in report.results] == [None, boom, None]

    async def test_failing_async_handler(self, bus: EventBus, emit: Emitter) -> None:
        """A failing async handler is isolated too."""

        async def failing(event: Event) -> None:
            await asyncio.sleep(0)
            raise KeyError("missing")

        bus.on("x", failing)
        bus.on("x", lambda e: "still ran")

        report = await emit(bus, "x")

        assert report.values == ("still ran",)
        assert len(report.errors) == 1
        assert isinstance(report.errors[0].error, KeyError)

    async def test_raising_predicate(self, bus: EventBus, emit: Emitter) -> None:
        """A raising predicate is reported as that handler's failure."""

        def predicate(event: Event) -> bool:
            raise LookupError("bad predicate")

        called: list[str] = []
        bus.on("x", lambda e: called.append("guarded"), predicate=predicate)
        bus.on("x", lambda e: called.append("other"))

        report = await emit(bus, "x")

        assert called == ["other"]
        assert len(report.results) == 2
        assert isinstance(report.errors[0].error, LookupError)


class TestReport:
    async def test_ok_without_failures(self, bus: EventBus, emit: Emitter) -> None:
        """The report is ok when no handler failed."""
        bus.on("x", lambda e: None)
        bus.on("x", lambda e: 0)

        report = await emit(bus, "x")

        assert report.ok is True
        assert report.errors == ()
        assert report.values == (None, 0)
        assert report.raise_errors() is None

    async def test_raise_errors(self, bus: EventBus, emit: Emitter) -> None:
        """raise_errors raises an ExceptionGroup of the handlers' exceptions."""
        first = ValueError("first")
        second = TypeError("second")

        def fail_first(event: Event) -> None:
            raise first

        async def fail_second(event: Event) -> None:
            raise second

        bus.on("x", fail_first)
        bus.on("x", lambda e: "fine")
        bus.on("x", fail_second)
        report = await emit(bus, "x")

        with pytest.raises(ExceptionGroup) as caught:
            report.raise_errors()

        assert list(caught.value.exceptions) == [first, second]
        assert caught.value.exceptions[0] is first
        assert caught.value.exceptions[1] is second

    async def test_handler_result_fields(self, bus: EventBus, emit: Emitter) -> None:
        """A HandlerResult holds the handler's info, value or error, ok and duration."""
        boom = RuntimeError("boom")

        def good(event: Event) -> int:
            return 42

        def bad(event: Event) -> None:
            raise boom

        bus.on("x", good)
        bus.on("x", bad)
        good_info, bad_info = bus.listeners("x")

        report = await emit(bus, "x")

        ok_result, failed_result = report.results
        assert ok_result.handler is good_info
        assert isinstance(ok_result.handler, HandlerInfo)
        assert ok_result.handler.name.endswith(
            "TestReport.test_handler_result_fields.<locals>.good"
        )
        assert ok_result.value == 42
        assert ok_result.error is None
        assert ok_result.ok is True
        assert failed_result.handler is bad_info
        assert failed_result.value is None
        assert failed_result.error is boom
        assert failed_result.ok is False
        for result in report.results:
            assert isinstance(result.duration, float)
            assert result.duration >= 0

    async def test_event_fields(self, bus: EventBus, emit: Emitter) -> None:
        """The report's event is the one handlers got, with every field filled."""
        seen: list[Event] = []

        def handler(event: Event) -> int:
            seen.append(event)
            return event["amount"]

        bus.on("sale.closed", handler)

        before = time.time()
        report = await emit(bus, "sale.closed", source="caisse", amount=12, who="ann")
        after = time.time()

        event = report.event
        assert report.values == (12,)
        assert event is seen[0]
        assert event.name == "sale.closed"
        assert dict(event.payload) == {"amount": 12, "who": "ann"}
        assert event["amount"] == 12
        assert event.source == "caisse"
        assert event.depth == 0
        assert event.parent_id is None
        assert before <= event.timestamp <= after
        assert isinstance(event.id, str)
        assert event.id

    async def test_source_defaults_to_none(self, bus: EventBus, emit: Emitter) -> None:
        """An event emitted without a source has source None."""
        report = await emit(bus, "x")

        assert report.event.source is None

    async def test_new_id_per_emission(self, bus: EventBus, emit: Emitter) -> None:
        """Each emission gets a new event id."""
        first = await emit(bus, "x")
        second = await emit(bus, "x")

        assert first.event.id != second.event.id

    async def test_predicate_skips(self, bus: EventBus, emit: Emitter) -> None:
        """Results leave out the handlers their predicate skipped."""

        def skipped(event: Event) -> str:
            return "skipped"

        def runs(event: Event) -> str:
            return "runs"

        bus.on("x", skipped, predicate=lambda e: e["n"] > 10)
        bus.on("x", runs)

        report = await emit(bus, "x", n=1)

        assert [r.handler.name for r in report.results] == [bus.listeners("x")[1].name]
        assert report.values == ("runs",)
        assert report.ok is True


class TestReturnedAwaitable:
    """A sync handler that returns an awaitable has it awaited."""

    async def test_coroutine_awaited(self, bus: EventBus, emit: Emitter) -> None:
        """A coroutine returned by a sync handler is awaited for its value."""

        async def work(n: int) -> int:
            await asyncio.sleep(0)
            return n * 2

        def handler(event: Event) -> Any:
            return work(event["n"])

        bus.on("x", handler)

        report = await emit(bus, "x", n=21)

        assert report.values == (42,)
        assert report.ok

    @LOOP_MODES
    async def test_future_awaited(self, bus: EventBus, emit: Emitter) -> None:
        """A future returned by a sync handler is awaited for its result."""

        def handler(event: Event) -> asyncio.Future[str]:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[str] = loop.create_future()
            loop.call_soon(future.set_result, "resolved later")
            return future

        bus.on("x", handler)

        report = await emit(bus, "x")

        assert report.values == ("resolved later",)

    async def test_done_before_next(self, bus: EventBus, emit: Emitter) -> None:
        """The returned awaitable finishes before the next handler starts."""
        log: list[str] = []

        async def work() -> None:
            log.append("work:start")
            await asyncio.sleep(0)
            log.append("work:end")

        bus.on("x", lambda e: work())
        bus.on("x", lambda e: log.append("next"))

        await emit(bus, "x")

        assert log == ["work:start", "work:end", "next"]

    async def test_failure_isolated(self, bus: EventBus, emit: Emitter) -> None:
        """The returned awaitable's failure is that handler's, isolated."""

        async def work() -> None:
            raise ValueError("in awaitable")

        bus.on("x", lambda e: work())
        bus.on("x", lambda e: "next")

        report = await emit(bus, "x")

        assert report.values == ("next",)
        assert isinstance(report.errors[0].error, ValueError)

    async def test_timeout_applies(self, bus: EventBus, emit: Emitter) -> None:
        """The handler's timeout applies to the awaitable it returned."""
        saw_cancel: list[bool] = []

        bus.on("x", lambda e: _hang_until_cancelled(saw_cancel), timeout=0.02)
        bus.on("x", lambda e: "next")

        report = await emit(bus, "x")

        assert saw_cancel == [True]
        assert isinstance(report.errors[0].error, TimeoutError)
        assert report.values == ("next",)


class TestTimeouts:
    async def test_past_timeout_cancelled(self, bus: EventBus, emit: Emitter) -> None:
        """An async handler past its timeout is cancelled and reported as a TimeoutError."""
        saw_cancel: list[bool] = []
        log: list[str] = []

        async def hangs(event: Event) -> None:
            await _hang_until_cancelled(saw_cancel)

        bus.on("x", hangs, timeout=0.02)
        bus.on("x", lambda e: log.append("later") or "later")

        report = await emit(bus, "x")

        assert saw_cancel == [True]
        assert log == ["later"]
        assert report.values == ("later",)
        assert len(report.errors) == 1
        assert isinstance(report.errors[0].error, TimeoutError)
        assert report.errors[0].handler.timeout == 0.02

    async def test_bus_timeout(self, emit: Emitter) -> None:
        """The bus's handler_timeout applies to handlers without their own."""
        bus = EventBus("test", handler_timeout=0.02)
        saw_cancel: list[bool] = []

        async def hangs(event: Event) -> None:
            await _hang_until_cancelled(saw_cancel)

        async def later(event: Event) -> str:
            return "later"

        bus.on("x", hangs)
        bus.on("x", later)

        report = await emit(bus, "x")

        assert saw_cancel == [True]
        assert len(report.errors) == 1
        assert isinstance(report.errors[0].error, TimeoutError)
        assert report.values == ("later",)

    async def test_own_timeout_wins(self, emit: Emitter) -> None:
        """A subscription's timeout overrides the bus's handler_timeout."""
        bus = EventBus("test", handler_timeout=0.01)

        async def slower_than_bus_timeout(event: Event) -> str:
            proceed = asyncio.Event()
            asyncio.get_running_loop().call_later(0.03, proceed.set)
            await proceed.wait()
            return "done"

        bus.on("x", slower_than_bus_timeout, timeout=60)

        report = await emit(bus, "x")

        assert report.ok, report.errors
        assert report.values == ("done",)

    async def test_within_timeout(self, bus: EventBus, emit: Emitter) -> None:
        """An async handler within its timeout succeeds."""

        async def quick(event: Event) -> str:
            await asyncio.sleep(0)
            return "quick"

        bus.on("x", quick, timeout=60)

        report = await emit(bus, "x")

        assert report.values == ("quick",)

    async def test_reported_to_on_error(self, emit: Emitter) -> None:
        """A timeout is reported to on_error."""
        seen: list[BaseException] = []
        bus = EventBus("test", handler_timeout=0.01, on_error=lambda e, i, exc: seen.append(exc))

        async def hangs(event: Event) -> None:
            await asyncio.Event().wait()

        bus.on("x", hangs)

        await emit(bus, "x")

        assert len(seen) == 1
        assert isinstance(seen[0], TimeoutError)


class TestOnError:
    async def test_called_per_failure(self, emit: Emitter) -> None:
        """on_error gets (event, HandlerInfo, exception) for each failure."""
        calls: list[tuple[Event, HandlerInfo, Exception]] = []
        bus = EventBus("test", on_error=lambda event, info, exc: calls.append((event, info, exc)))
        first = ValueError("first")
        second = KeyError("second")

        def fail_first(event: Event) -> None:
            raise first

        async def fail_second(event: Event) -> None:
            raise second

        bus.on("x", fail_first)
        bus.on("x", lambda e: "ok")
        bus.on("x", fail_second)
        first_info, _, second_info = bus.listeners("x")

        report = await emit(bus, "x")

        assert calls == [
            (report.event, first_info, first),
            (report.event, second_info, second),
        ]
        assert calls[0][0] is report.event
        assert calls[0][2] is first
        assert calls[1][2] is second

    async def test_not_called_without_failure(self, emit: Emitter) -> None:
        """on_error is not called when nothing fails."""
        calls: list[object] = []
        bus = EventBus("test", on_error=lambda *args: calls.append(args))
        bus.on("x", lambda e: "ok")

        await emit(bus, "x")

        assert calls == []

    async def test_async_awaited(self, emit: Emitter) -> None:
        """An async on_error is awaited before the emission goes on."""
        log: list[str] = []

        async def on_error(event: Event, info: HandlerInfo, exc: Exception) -> None:
            log.append("on_error:start")
            await asyncio.sleep(0)
            log.append(f"on_error:end {exc}")

        bus = EventBus("test", on_error=on_error)

        def failing(event: Event) -> None:
            raise ValueError("boom")

        bus.on("x", failing)
        bus.on("x", lambda e: log.append("next handler"))

        await emit(bus, "x")

        assert log == ["on_error:start", "on_error:end boom", "next handler"]

    async def test_raising_hook_isolated(self, emit: Emitter) -> None:
        """An on_error that raises is isolated and logged."""
        hook_error = RuntimeError("hook broke")

        def on_error(event: Event, info: HandlerInfo, exc: Exception) -> None:
            raise hook_error

        bus = EventBus("test", on_error=on_error)
        boom = ValueError("boom")

        def failing(event: Event) -> None:
            raise boom

        bus.on("x", failing)
        bus.on("x", lambda e: "after")

        with structlog.testing.capture_logs() as logs:
            report = await emit(bus, "x")

        assert report.values == ("after",)
        assert [r.error for r in report.errors] == [boom]
        hook_logs = [entry for entry in logs if entry["event"] == "eventbus.on_error_failed"]
        assert len(hook_logs) == 1
        assert hook_logs[0]["exc_info"] is hook_error

    async def test_raising_async_hook(self, emit: Emitter) -> None:
        """An async on_error that raises is isolated too."""

        async def on_error(event: Event, info: HandlerInfo, exc: Exception) -> None:
            await asyncio.sleep(0)
            raise RuntimeError("async hook broke")

        bus = EventBus("test", on_error=on_error)

        def failing(event: Event) -> None:
            raise ValueError("boom")

        bus.on("x", failing)
        bus.on("x", lambda e: "after")

        with structlog.testing.capture_logs() as logs:
            report = await emit(bus, "x")

        assert report.values == ("after",)
        assert len(report.errors) == 1
        assert [entry["event"] for entry in logs].count("eventbus.on_error_failed") == 1


class TestBaseExceptions:
    """A BaseException is no handler failure: it ends the emission and reaches the caller."""

    @RAISING_MODES
    async def test_keyboard_interrupt(self, bus: EventBus, emit: Emitter) -> None:
        """KeyboardInterrupt in a handler propagates; later handlers do not run."""
        log: list[str] = []

        def interrupts(event: Event) -> None:
            log.append("interrupts")
            raise KeyboardInterrupt("stop")

        bus.on("x", interrupts)
        bus.on("x", lambda e: log.append("later"))

        with pytest.raises(KeyboardInterrupt, match="stop"):
            await emit(bus, "x")

        assert log == ["interrupts"]

    @RAISING_MODES
    async def test_no_on_error(self, emit: Emitter) -> None:
        """on_error is not called for BaseExceptions."""
        calls: list[object] = []
        bus = EventBus("test", on_error=lambda *args: calls.append(args))

        def interrupts(event: Event) -> None:
            raise KeyboardInterrupt

        bus.on("x", interrupts)

        with pytest.raises(KeyboardInterrupt):
            await emit(bus, "x")

        assert calls == []

    @RAISING_MODES
    async def test_bus_still_works(self, bus: EventBus, emit: Emitter) -> None:
        """The bus still emits after a handler raised a BaseException."""
        calls: list[int] = []

        def interrupts_the_first_time(event: Event) -> str:
            calls.append(1)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return "fine"

        bus.on("x", interrupts_the_first_time)

        with pytest.raises(KeyboardInterrupt):
            await emit(bus, "x")
        report = await emit(bus, "x")

        assert report.values == ("fine",)


class TestArguments:
    async def test_payload_key_name(self, bus: EventBus, emit: Emitter) -> None:
        """A payload key called ``name`` is allowed and does not touch event.name."""
        seen: list[Event] = []
        bus.on("member.created", seen.append)

        report = await emit(bus, "member.created", name="Alice", source="crm")

        assert seen[0]["name"] == "Alice"
        assert seen[0].name == "member.created"
        assert dict(report.event.payload) == {"name": "Alice"}
        assert report.event.source == "crm"

    @pytest.mark.parametrize("source", [3, b"caisse", ["caisse"]])
    async def test_non_str_source(self, bus: EventBus, emit: Emitter, source: object) -> None:
        """A non-str source is a TypeError and runs nothing."""
        log: list[str] = []
        bus.on("x", lambda e: log.append("ran"))

        with bus.record() as recorder, pytest.raises(TypeError, match="source must be a str"):
            await emit(bus, "x", source=source)

        assert log == []
        assert recorder.events == []
        assert bus.listener_count() == 1
        assert bus.topics() == ("x",)

    @pytest.mark.parametrize(
        ("name", "error"),
        [("bad name", ValueError), ("user.*", ValueError), ("", ValueError), (12, TypeError)],
    )
    async def test_invalid_name(
        self, bus: EventBus, emit: Emitter, name: object, error: type[Exception]
    ) -> None:
        """An invalid event name is refused and runs nothing."""
        log: list[str] = []
        bus.on("*", lambda e: log.append("ran"))

        with bus.record() as recorder, pytest.raises(error, match=re.escape(repr(name))):
            await emit(bus, name)  # type: ignore[arg-type]

        assert log == []
        assert recorder.events == []
        assert bus.listener_count() == 1


class TestRouteCache:
    """Regression: a full route cache stopped caching new names; emptying it must lose nothing."""

    @staticmethod
    def _overflow(bus: EventBus) -> int:
        """Emit more distinct names than the route cache holds."""
        from eventbus._routes import MAX_CACHED_ROUTES

        count = MAX_CACHED_ROUTES + 10
        for i in range(count):
            bus.emit_sync(f"order.n{i}.paid")
        return count

    def test_old_name(self, bus: EventBus) -> None:
        """An old name still runs its handlers once the cache overflowed."""
        calls: list[str] = []
        bus.on("hot.name", lambda e: calls.append("exact"))
        bus.on("hot.*", lambda e: calls.append("pattern"))
        assert bus.emit_sync("hot.name").ok

        self._overflow(bus)
        calls.clear()
        report = bus.emit_sync("hot.name")

        assert calls == ["exact", "pattern"]
        assert len(report.results) == 2

    def test_new_name(self, bus: EventBus) -> None:
        """A new name still runs its handlers once the cache overflowed."""
        paid: list[str] = []
        late: list[str] = []
        bus.on("order.*", lambda e: paid.append(e.name))
        bus.on("late.name", lambda e: late.append(e.name))

        count = self._overflow(bus)
        first = bus.emit_sync("late.name")
        second = bus.emit_sync("late.name")

        assert len(paid) == count
        assert late == ["late.name", "late.name"]
        assert first.ok
        assert second.ok

    def test_later_subscription(self, bus: EventBus) -> None:
        """A subscription made after the cache filled up is used."""
        calls: list[str] = []
        bus.on("hot.name", lambda e: calls.append("first"))
        self._overflow(bus)
        bus.emit_sync("hot.name")

        bus.on("hot.name", lambda e: calls.append("second"))
        bus.emit_sync("hot.name")

        assert calls == ["first", "first", "second"]

    def test_overflow_evicts_oldest(self, bus: EventBus) -> None:
        """Past the cap, the oldest route of a name not subscribed to exactly is
        evicted, one at a time: the newest and the subscribed ones stay cached."""
        from eventbus._routes import MAX_CACHED_ROUTES

        bus.on("hot.name", lambda e: None)
        bus.emit_sync("hot.name")
        count = self._overflow(bus)
        routes = bus._router.routes

        assert "hot.name" in routes
        assert f"order.n{count - 1}.paid" in routes
        assert "order.n0.paid" not in routes
        assert len(routes) == MAX_CACHED_ROUTES + 1


class TestUnheardEmission:
    """An emission nobody listens to makes its event only when the report's is read."""

    async def test_event_fields(self, bus: EventBus, emit: Emitter) -> None:
        """Its event carries the name, the payload, a fresh id and the emission's time."""
        before = time.time()
        report = await emit(bus, "nobody.listens", k=1)
        after = time.time()
        event = report.event

        assert isinstance(event, Event)
        assert (event.name, dict(event.payload), event.source) == ("nobody.listens", {"k": 1}, None)
        assert (event.parent_id, event.depth) == (None, 0)
        assert before <= event.timestamp <= after
        assert report.ok
        assert report.results == ()
        assert report.duration == 0

    async def test_event_read_twice(self, bus: EventBus, emit: Emitter) -> None:
        """Reading the event twice gives equal events (same id and timestamp)."""
        report = await emit(bus, "nobody.listens")

        first, second = report.event, report.event
        assert first == second
        assert first.timestamp == second.timestamp

    async def test_ids_differ(self, bus: EventBus, emit: Emitter) -> None:
        """Each emission gets its own id."""
        first = await emit(bus, "nobody.listens")
        second = await emit(bus, "nobody.listens")

        assert first.event.id != second.event.id


def _answer(event: Event) -> int:
    return 42


COPIERS = pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])


class TestCopies:
    @COPIERS
    def test_report_copy(self, bus: EventBus, copier: Callable[[Any], Any]) -> None:
        """A copy of an EmitReport is the report itself.

        Regression: copying an EmitReport built a corrupt one (its event became a plain tuple).
        """
        bus.on("x", lambda e: 42)
        report = bus.emit_sync("x", k=1)

        copied = copier(report)

        assert copied is report
        assert copied.values == (42,)
        assert type(copied.event) is Event

    def test_report_pickle(self, bus: EventBus) -> None:
        """Pickling an EmitReport raises TypeError.

        Regression: a pickled EmitReport came back corrupt instead of being refused.
        """
        bus.on("x", lambda e: 42)
        report = bus.emit_sync("x")

        with pytest.raises(TypeError, match="EmitReport cannot be pickled"):
            pickle.dumps(report)

    @COPIERS
    def test_handler_info_copy(self, bus: EventBus, copier: Callable[[Any], Any]) -> None:
        """A copy of a HandlerInfo is the HandlerInfo itself.

        Regression: copy.copy(HandlerInfo) raised a confusing 'read-only' AttributeError.
        """
        bus.on("x", lambda e: 42)
        report = bus.emit_sync("x")
        info = report.results[0].handler

        assert copier(info) is info

    def test_handler_info_pickle(self, bus: EventBus) -> None:
        """Pickling a HandlerInfo raises TypeError.

        Regression: pickling a HandlerInfo failed with a confusing error.
        """
        bus.on("x", _answer)  # a picklable function: only the HandlerInfo can refuse
        (info,) = bus.listeners("x")

        with pytest.raises(TypeError, match="HandlerInfo cannot be pickled"):
            pickle.dumps(info)
