"""``await bus.emit``: dispatch order, isolation, reports, timeouts, on_error, BaseExceptions."""

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

from eventbus import EmitReport, Event, EventBus, HandlerInfo, HandlerResult
from eventbus._routes import MAX_CACHED_ROUTES as _MAX_CACHED_ROUTES

# ---------------------------------------------------------------- order and calling


async def test_handlers_run_one_at_a_time_in_subscription_order(bus: EventBus) -> None:
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

    await bus.emit("x")

    assert log == [
        "first:start",
        "first:after-yield",
        "first:end",
        "second",
        "third:start",
        "third:end",
    ]


async def test_concurrent_task_interleaves_only_at_the_async_handlers_yield(bus: EventBus) -> None:
    """While an async handler yields, other tasks run; the next handler does not start early."""
    log: list[str] = []

    async def slow(event: Event) -> None:
        log.append("slow:start")
        await asyncio.sleep(0)
        log.append("slow:end")

    def after(event: Event) -> None:
        log.append("after")

    async def bystander() -> None:
        log.append("bystander")

    bus.on("x", slow)
    bus.on("x", after)

    await asyncio.gather(bus.emit("x"), bystander())

    assert log == ["slow:start", "bystander", "slow:end", "after"]


async def test_higher_priority_handlers_run_first(bus: EventBus) -> None:
    log: list[str] = []
    bus.on("x", lambda e: log.append("low"), priority=-1)
    bus.on("x", lambda e: log.append("normal"))
    bus.on("x", lambda e: log.append("high"), priority=5)

    await bus.emit("x")

    assert log == ["high", "normal", "low"]


async def test_sync_handlers_are_called_and_async_handlers_awaited(bus: EventBus) -> None:
    def sync_handler(event: Event) -> str:
        return f"sync {event['n']}"

    async def async_handler(event: Event) -> str:
        await asyncio.sleep(0)
        return f"async {event['n']}"

    bus.on("x", sync_handler)
    bus.on("x", async_handler)

    report = await bus.emit("x", n=1)

    assert report.values == ("sync 1", "async 1")


async def test_emit_returns_an_emit_report(bus: EventBus) -> None:
    bus.on("x", lambda e: 1)

    report = await bus.emit("x")

    assert isinstance(report, EmitReport)
    assert all(isinstance(result, HandlerResult) for result in report.results)


async def test_emit_with_no_subscribers_returns_an_empty_ok_report(bus: EventBus) -> None:
    report = await bus.emit("nobody.listens", a=1)

    assert report.ok is True
    assert report.results == ()
    assert report.errors == ()
    assert report.values == ()
    assert report.raise_errors() is None
    assert report.event.name == "nobody.listens"
    assert report.event["a"] == 1


# ---------------------------------------------------------------- isolation and reports


async def test_failing_handler_does_not_stop_the_others(bus: EventBus) -> None:
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

    report = await bus.emit("x")

    assert log == ["before", "failing", "after"]
    assert report.ok is False
    assert [r.error for r in report.errors] == [boom]
    assert report.values == ("b", "a")
    assert [r.error for r in report.results] == [None, boom, None]


async def test_failing_async_handler_is_isolated_too(bus: EventBus) -> None:
    async def failing(event: Event) -> None:
        await asyncio.sleep(0)
        raise KeyError("missing")

    bus.on("x", failing)
    bus.on("x", lambda e: "still ran")

    report = await bus.emit("x")

    assert report.values == ("still ran",)
    assert len(report.errors) == 1
    assert isinstance(report.errors[0].error, KeyError)


async def test_report_ok_when_no_handler_failed(bus: EventBus) -> None:
    bus.on("x", lambda e: None)
    bus.on("x", lambda e: 0)

    report = await bus.emit("x")

    assert report.ok is True
    assert report.errors == ()
    assert report.values == (None, 0)
    assert report.raise_errors() is None


async def test_raise_errors_raises_an_exception_group_of_the_handlers_exceptions(
    bus: EventBus,
) -> None:
    first = ValueError("first")
    second = TypeError("second")

    def fail_first(event: Event) -> None:
        raise first

    async def fail_second(event: Event) -> None:
        raise second

    bus.on("x", fail_first)
    bus.on("x", lambda e: "fine")
    bus.on("x", fail_second)
    report = await bus.emit("x")

    with pytest.raises(ExceptionGroup) as caught:
        report.raise_errors()

    assert list(caught.value.exceptions) == [first, second]
    assert caught.value.exceptions[0] is first
    assert caught.value.exceptions[1] is second


async def test_handler_result_fields(bus: EventBus) -> None:
    boom = RuntimeError("boom")

    def good(event: Event) -> int:
        return 42

    def bad(event: Event) -> None:
        raise boom

    bus.on("x", good)
    bus.on("x", bad)
    good_info, bad_info = bus.listeners("x")

    report = await bus.emit("x")

    ok_result, failed_result = report.results
    assert ok_result.handler is good_info
    assert isinstance(ok_result.handler, HandlerInfo)
    assert ok_result.handler.name.endswith("test_handler_result_fields.<locals>.good")
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


async def test_handler_result_duration_covers_the_awaited_handler(bus: EventBus) -> None:
    async def hangs(event: Event) -> None:
        await asyncio.Event().wait()

    bus.on("x", hangs, timeout=0.02)

    report = await bus.emit("x")

    assert report.results[0].duration >= 0.015


async def test_report_event_fields(bus: EventBus) -> None:
    seen: list[Event] = []
    bus.on("sale.closed", seen.append)

    before = time.time()
    report = await bus.emit("sale.closed", source="caisse", amount=12, who="ann")
    after = time.time()

    event = report.event
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


async def test_report_event_source_defaults_to_none(bus: EventBus) -> None:
    report = await bus.emit("x")

    assert report.event.source is None


async def test_each_emission_gets_a_new_event_id(bus: EventBus) -> None:
    first = await bus.emit("x")
    second = await bus.emit("x")

    assert first.event.id != second.event.id


async def test_results_exclude_handlers_skipped_by_their_predicate(bus: EventBus) -> None:
    def skipped(event: Event) -> str:
        return "skipped"

    def runs(event: Event) -> str:
        return "runs"

    bus.on("x", skipped, predicate=lambda e: e["n"] > 10)
    bus.on("x", runs)

    report = await bus.emit("x", n=1)

    assert [r.handler.name for r in report.results] == [bus.listeners("x")[1].name]
    assert report.values == ("runs",)
    assert report.ok is True


async def test_raising_predicate_is_reported_as_that_handlers_failure(bus: EventBus) -> None:
    def predicate(event: Event) -> bool:
        raise LookupError("bad predicate")

    called: list[str] = []
    bus.on("x", lambda e: called.append("guarded"), predicate=predicate)
    bus.on("x", lambda e: called.append("other"))

    report = await bus.emit("x")

    assert called == ["other"]
    assert len(report.results) == 2
    assert isinstance(report.errors[0].error, LookupError)


# ---------------------------------------------------------------- sync handler returning awaitables


async def test_sync_handler_returning_a_coroutine_has_it_awaited(bus: EventBus) -> None:
    async def work(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    def handler(event: Event) -> Any:
        return work(event["n"])

    bus.on("x", handler)

    report = await bus.emit("x", n=21)

    assert report.values == (42,)
    assert report.ok


async def test_sync_handler_returning_a_future_has_it_awaited(bus: EventBus) -> None:
    def handler(event: Event) -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        loop.call_soon(future.set_result, "resolved later")
        return future

    bus.on("x", handler)

    report = await bus.emit("x")

    assert report.values == ("resolved later",)


async def test_awaitable_returned_by_a_sync_handler_finishes_before_the_next_handler(
    bus: EventBus,
) -> None:
    log: list[str] = []

    async def work() -> None:
        log.append("work:start")
        await asyncio.sleep(0)
        log.append("work:end")

    bus.on("x", lambda e: work())
    bus.on("x", lambda e: log.append("next"))

    await bus.emit("x")

    assert log == ["work:start", "work:end", "next"]


async def test_failure_of_an_awaitable_returned_by_a_sync_handler_is_isolated(
    bus: EventBus,
) -> None:
    async def work() -> None:
        raise ValueError("in awaitable")

    bus.on("x", lambda e: work())
    bus.on("x", lambda e: "next")

    report = await bus.emit("x")

    assert report.values == ("next",)
    assert isinstance(report.errors[0].error, ValueError)


async def test_timeout_applies_to_an_awaitable_returned_by_a_sync_handler(bus: EventBus) -> None:
    saw_cancel: list[bool] = []

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.append(True)
            raise

    bus.on("x", lambda e: hang(), timeout=0.02)
    bus.on("x", lambda e: "next")

    report = await bus.emit("x")

    assert saw_cancel == [True]
    assert isinstance(report.errors[0].error, TimeoutError)
    assert report.values == ("next",)


# ---------------------------------------------------------------- timeouts


async def test_async_handler_past_its_timeout_is_cancelled_and_reported_as_timeout(
    bus: EventBus,
) -> None:
    saw_cancel: list[bool] = []
    log: list[str] = []

    async def hangs(event: Event) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.append(True)
            raise

    bus.on("x", hangs, timeout=0.02)
    bus.on("x", lambda e: log.append("later"))

    report = await bus.emit("x")

    assert saw_cancel == [True]
    assert log == ["later"]
    assert len(report.errors) == 1
    assert isinstance(report.errors[0].error, TimeoutError)
    assert report.errors[0].handler.timeout == 0.02


async def test_bus_handler_timeout_applies_to_handlers_without_their_own() -> None:
    bus = EventBus("test", handler_timeout=0.02)
    saw_cancel: list[bool] = []

    async def hangs(event: Event) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.append(True)
            raise

    async def later(event: Event) -> str:
        return "later"

    bus.on("x", hangs)
    bus.on("x", later)

    report = await bus.emit("x")

    assert saw_cancel == [True]
    assert isinstance(report.errors[0].error, TimeoutError)
    assert report.values == ("later",)


async def test_subscription_timeout_overrides_the_bus_handler_timeout() -> None:
    bus = EventBus("test", handler_timeout=0.01)
    proceed = asyncio.Event()

    async def slower_than_bus_timeout(event: Event) -> str:
        asyncio.get_running_loop().call_later(0.03, proceed.set)
        await proceed.wait()
        return "done"

    bus.on("x", slower_than_bus_timeout, timeout=2)

    report = await bus.emit("x")

    assert report.ok, report.errors
    assert report.values == ("done",)


async def test_async_handler_within_its_timeout_succeeds(bus: EventBus) -> None:
    async def quick(event: Event) -> str:
        await asyncio.sleep(0)
        return "quick"

    bus.on("x", quick, timeout=1)

    report = await bus.emit("x")

    assert report.values == ("quick",)


async def test_timeout_is_reported_to_on_error() -> None:
    seen: list[BaseException] = []
    bus = EventBus("test", handler_timeout=0.01, on_error=lambda e, i, exc: seen.append(exc))

    async def hangs(event: Event) -> None:
        await asyncio.Event().wait()

    bus.on("x", hangs)

    await bus.emit("x")

    assert len(seen) == 1
    assert isinstance(seen[0], TimeoutError)


# ---------------------------------------------------------------- on_error


async def test_on_error_is_called_with_event_info_and_exception_per_failure() -> None:
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

    report = await bus.emit("x")

    assert calls == [
        (report.event, first_info, first),
        (report.event, second_info, second),
    ]
    assert calls[0][0] is report.event
    assert calls[0][2] is first
    assert calls[1][2] is second


async def test_on_error_is_not_called_when_nothing_fails() -> None:
    calls: list[object] = []
    bus = EventBus("test", on_error=lambda *args: calls.append(args))
    bus.on("x", lambda e: "ok")

    await bus.emit("x")

    assert calls == []


async def test_async_on_error_is_awaited_before_emit_returns() -> None:
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

    await bus.emit("x")

    assert log == ["on_error:start", "on_error:end boom", "next handler"]


async def test_on_error_raising_is_isolated_and_logged() -> None:
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
        report = await bus.emit("x")

    assert report.values == ("after",)
    assert [r.error for r in report.errors] == [boom]
    hook_logs = [entry for entry in logs if entry["event"] == "eventbus.on_error_failed"]
    assert len(hook_logs) == 1
    assert hook_logs[0]["exc_info"] is hook_error


async def test_async_on_error_raising_is_isolated() -> None:
    async def on_error(event: Event, info: HandlerInfo, exc: Exception) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async hook broke")

    bus = EventBus("test", on_error=on_error)

    def failing(event: Event) -> None:
        raise ValueError("boom")

    bus.on("x", failing)
    bus.on("x", lambda e: "after")

    with structlog.testing.capture_logs() as logs:
        report = await bus.emit("x")

    assert report.values == ("after",)
    assert len(report.errors) == 1
    assert [entry["event"] for entry in logs].count("eventbus.on_error_failed") == 1


# ---------------------------------------------------------------- BaseException propagation


async def test_cancelled_error_raised_in_a_handler_propagates_out_of_emit(bus: EventBus) -> None:
    log: list[str] = []

    def cancels(event: Event) -> None:
        raise asyncio.CancelledError("from handler")

    bus.on("x", cancels)
    bus.on("x", lambda e: log.append("later"))

    with pytest.raises(asyncio.CancelledError, match="from handler"):
        await bus.emit("x")

    assert log == []


async def test_keyboard_interrupt_in_a_handler_propagates_and_later_handlers_do_not_run(
    bus: EventBus,
) -> None:
    log: list[str] = []

    def interrupts(event: Event) -> None:
        log.append("interrupts")
        raise KeyboardInterrupt("stop")

    bus.on("x", interrupts)
    bus.on("x", lambda e: log.append("later"))

    with pytest.raises(KeyboardInterrupt, match="stop"):
        await bus.emit("x")

    assert log == ["interrupts"]


async def test_keyboard_interrupt_in_an_async_handler_propagates(bus: EventBus) -> None:
    log: list[str] = []

    async def interrupts(event: Event) -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt("async stop")

    bus.on("x", interrupts)
    bus.on("x", lambda e: log.append("later"))

    with pytest.raises(KeyboardInterrupt, match="async stop"):
        await bus.emit("x")

    assert log == []


async def test_on_error_is_not_called_for_base_exceptions() -> None:
    calls: list[object] = []
    bus = EventBus("test", on_error=lambda *args: calls.append(args))

    def interrupts(event: Event) -> None:
        raise KeyboardInterrupt

    bus.on("x", interrupts)

    with pytest.raises(KeyboardInterrupt):
        await bus.emit("x")

    assert calls == []


async def test_cancelling_the_emitting_task_cancels_the_running_handler(bus: EventBus) -> None:
    started = asyncio.Event()
    saw_cancel: list[bool] = []
    log: list[str] = []

    async def hangs(event: Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.append(True)
            raise

    bus.on("x", hangs)
    bus.on("x", lambda e: log.append("later"))

    task = asyncio.create_task(bus.emit("x"))
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task

    assert task.cancelled()
    assert saw_cancel == [True]
    assert log == []


async def test_emit_still_works_after_a_handler_raised_a_base_exception(bus: EventBus) -> None:
    calls: list[int] = []

    def interrupts_the_first_time(event: Event) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return "fine"

    bus.on("x", interrupts_the_first_time)

    with pytest.raises(KeyboardInterrupt):
        await bus.emit("x")
    report = await bus.emit("x")

    assert report.values == ("fine",)


# ---------------------------------------------------------------- arguments


async def test_payload_key_called_name_is_allowed(bus: EventBus) -> None:
    seen: list[Event] = []
    bus.on("member.created", seen.append)

    report = await bus.emit("member.created", name="Alice", source="crm")

    assert seen[0]["name"] == "Alice"
    assert seen[0].name == "member.created"
    assert dict(report.event.payload) == {"name": "Alice"}
    assert report.event.source == "crm"


@pytest.mark.parametrize("source", [3, b"caisse", ["caisse"]])
async def test_non_str_source_is_a_type_error_and_runs_nothing(
    bus: EventBus, source: object
) -> None:
    log: list[str] = []
    bus.on("x", lambda e: log.append("ran"))

    with bus.record() as recorder, pytest.raises(TypeError, match="source must be a str"):
        await bus.emit("x", source=source)  # type: ignore[arg-type]

    assert log == []
    assert recorder.events == []
    assert bus.listener_count() == 1
    assert bus.topics() == ("x",)


@pytest.mark.parametrize(
    ("name", "error"),
    [("bad name", ValueError), ("user.*", ValueError), ("", ValueError), (12, TypeError)],
)
async def test_invalid_event_name_is_refused_and_runs_nothing(
    bus: EventBus, name: object, error: type[Exception]
) -> None:
    log: list[str] = []
    bus.on("*", lambda e: log.append("ran"))

    with bus.record() as recorder, pytest.raises(error, match=re.escape(repr(name))):
        await bus.emit(name)  # type: ignore[arg-type]

    assert log == []
    assert recorder.events == []
    assert bus.listener_count() == 1


# ---------------------------------------------------------------- many distinct names


def _emit_more_names_than_the_route_cache_holds(bus: EventBus) -> int:
    count = _MAX_CACHED_ROUTES + 10
    for i in range(count):
        bus.emit_sync(f"order.n{i}.paid")
    return count


def test_an_old_name_still_runs_its_handlers_after_more_names_than_the_route_cache_holds(
    bus: EventBus,
) -> None:
    """Regression: a full route cache stopped caching new names; emptying it must lose nothing."""
    calls: list[str] = []
    bus.on("hot.name", lambda e: calls.append("exact"))
    bus.on("hot.*", lambda e: calls.append("pattern"))
    assert bus.emit_sync("hot.name").ok

    _emit_more_names_than_the_route_cache_holds(bus)
    calls.clear()
    report = bus.emit_sync("hot.name")

    assert calls == ["exact", "pattern"]
    assert len(report.results) == 2


def test_a_new_name_still_runs_its_handlers_after_more_names_than_the_route_cache_holds(
    bus: EventBus,
) -> None:
    """Regression: a full route cache stopped caching new names; emptying it must lose nothing."""
    paid: list[str] = []
    late: list[str] = []
    bus.on("order.*", lambda e: paid.append(e.name))
    bus.on("late.name", lambda e: late.append(e.name))

    count = _emit_more_names_than_the_route_cache_holds(bus)
    first = bus.emit_sync("late.name")
    second = bus.emit_sync("late.name")

    assert len(paid) == count
    assert late == ["late.name", "late.name"]
    assert first.ok
    assert second.ok


def test_a_subscription_made_after_the_route_cache_filled_up_is_used(bus: EventBus) -> None:
    """Regression: a full route cache stopped caching new names; emptying it must lose nothing."""
    calls: list[str] = []
    bus.on("hot.name", lambda e: calls.append("first"))
    _emit_more_names_than_the_route_cache_holds(bus)
    bus.emit_sync("hot.name")

    bus.on("hot.name", lambda e: calls.append("second"))
    bus.emit_sync("hot.name")

    assert calls == ["first", "first", "second"]


# ---------------------------------------------------------------- copying and pickling


def _answer(event: Event) -> int:
    return 42


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copy_of_an_emit_report_is_the_report_itself(
    bus: EventBus, copier: Callable[[Any], Any]
) -> None:
    """Regression: copying an EmitReport built a corrupt one (its event became a plain tuple)."""
    bus.on("x", lambda e: 42)
    report = bus.emit_sync("x", k=1)

    copied = copier(report)

    assert copied is report
    assert copied.values == (42,)
    assert type(copied.event) is Event


def test_pickling_an_emit_report_raises_type_error(bus: EventBus) -> None:
    """Regression: a pickled EmitReport came back corrupt instead of being refused."""
    bus.on("x", lambda e: 42)
    report = bus.emit_sync("x")

    with pytest.raises(TypeError, match="EmitReport cannot be pickled"):
        pickle.dumps(report)


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copy_of_a_handler_info_is_the_handler_info_itself(
    bus: EventBus, copier: Callable[[Any], Any]
) -> None:
    """Regression: copy.copy(HandlerInfo) raised a confusing 'read-only' AttributeError."""
    bus.on("x", lambda e: 42)
    report = bus.emit_sync("x")
    info = report.results[0].handler

    assert copier(info) is info


def test_pickling_a_handler_info_raises_type_error(bus: EventBus) -> None:
    """Regression: pickling a HandlerInfo failed with a confusing error."""
    bus.on("x", _answer)  # a picklable function: only the HandlerInfo can refuse
    (info,) = bus.listeners("x")

    with pytest.raises(TypeError, match="HandlerInfo cannot be pickled"):
        pickle.dumps(info)
