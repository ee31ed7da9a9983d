"""Misbehaving handlers: every kind of exception, awaitables that are not
coroutines, hanging past a timeout, cancelling themselves, emitting from
``on_error``, unsubscribing everything mid-emission, predicates that change
the bus. The bus keeps working, the report says what happened, and
``BaseException``s that are not ``Exception`` still propagate."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Any

import pytest
import structlog
from emitters import Emitter
from structlog.testing import capture_logs

from eventbus import (
    BusClosedError,
    EmitReport,
    Event,
    EventBus,
    HandlerInfo,
    ReentrancyError,
)

HOW = ["emit", "emit_sync", "publish"]


async def emit_by(bus: EventBus, how: str, name: str = "x", **payload: Any) -> EmitReport:
    if how == "emit":
        return await bus.emit(name, **payload)
    if how == "emit_sync":
        return bus.emit_sync(name, **payload)
    return await bus.publish(name, **payload)


# ---------------------------------------------------------------- every kind of exception


class StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ is broken")


class NeedsArguments(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code)
        self.reason = reason


class Unhashable(Exception):
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ is broken")


EXCEPTIONS: list[Callable[[], Exception]] = [
    lambda: ValueError("value"),
    lambda: TypeError("type"),
    lambda: KeyError("key"),
    lambda: ZeroDivisionError("zero"),
    lambda: RecursionError("deep"),
    lambda: MemoryError(),
    lambda: OSError(2, "no such file"),
    lambda: UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    lambda: StopIteration("stop"),
    lambda: StopAsyncIteration(),
    lambda: TimeoutError("slow"),
    lambda: AssertionError("assert"),
    lambda: NotImplementedError(),
    lambda: UserWarning("a warning raised as an exception"),
    lambda: ExceptionGroup("group", [ValueError("a"), KeyError("b")]),
    lambda: ReentrancyError("a handler's own", ("x",)),
    lambda: BusClosedError("a handler's own"),
    lambda: StrRaises(),
    lambda: NeedsArguments(7, "because"),
    lambda: Unhashable(),
    lambda: Exception("x" * 1_000_000),
]


EXCEPTION_IDS = [
    "ValueError",
    "TypeError",
    "KeyError",
    "ZeroDivisionError",
    "RecursionError",
    "MemoryError",
    "OSError",
    "UnicodeDecodeError",
    "StopIteration",
    "StopAsyncIteration",
    "TimeoutError",
    "AssertionError",
    "NotImplementedError",
    "UserWarning",
    "ExceptionGroup",
    "ReentrancyError",
    "BusClosedError",
    "StrRaises",
    "NeedsArguments",
    "Unhashable",
    "huge-message",
]


class TestExceptions:
    @pytest.mark.parametrize("make", EXCEPTIONS, ids=EXCEPTION_IDS)
    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    @pytest.mark.parametrize("how", HOW)
    async def test_any_exception(
        self, how: str, is_async: bool, make: Callable[[], Exception]
    ) -> None:
        """Any exception a handler raises is reported, and the others still run."""
        raised: list[Exception] = []
        hooked: list[BaseException] = []
        bus = EventBus("misbehaving", on_error=lambda event, info, error: hooked.append(error))

        def sync_failing(event: Event) -> None:
            raised.append(make())
            raise raised[-1]

        async def async_failing(event: Event) -> None:
            raised.append(make())
            raise raised[-1]

        bus.on("x", lambda event: "before", priority=1)
        if is_async and how == "emit_sync":
            bus.on("x", sync_failing)  # emit_sync in a running loop cannot run async handlers
        else:
            bus.on("x", async_failing if is_async else sync_failing)
        bus.on("x", lambda event: "after", priority=-1)

        report = await emit_by(bus, how)

        assert report.values == ("before", "after")
        assert not report.ok
        [failure] = report.errors
        error = failure.error
        # StopIteration leaving a coroutine becomes RuntimeError (PEP 479), with it as the cause.
        assert error is raised[0] or (error is not None and error.__cause__ is raised[0])
        assert hooked == [error]
        with pytest.raises(ExceptionGroup) as group:
            report.raise_errors()
        assert group.value.exceptions == (error,)
        assert (await emit_by(bus, how)).values == ("before", "after")

    async def test_unprintable_failure_logged(self) -> None:
        """A failure whose str and repr raise is logged by a real renderer."""
        output = io.StringIO()
        structlog.configure(
            processors=[structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(output),
        )
        bus = EventBus("misbehaving")

        def failing(event: Event) -> None:
            raise StrRaises

        bus.on("x", failing)
        bus.on("x", lambda event: "after")

        report = await bus.emit("x")

        assert report.values == ("after",)
        assert isinstance(report.errors[0].error, StrRaises)
        lines = [json.loads(line) for line in output.getvalue().splitlines()]
        failed = [line for line in lines if line["event"] == "eventbus.handler_failed"]
        assert len(failed) == 1
        assert failed[0]["error_type"] == "StrRaises"
        assert "StrRaises" in failed[0]["exception"]

    async def test_on_error_unprintable(self) -> None:
        """An on_error raising an exception whose str raises is isolated."""

        def on_error(event: Event, info: HandlerInfo, error: Exception) -> None:
            raise StrRaises

        bus = EventBus("misbehaving", on_error=on_error)

        def failing(event: Event) -> None:
            raise ValueError("boom")

        bus.on("x", failing)
        bus.on("x", lambda event: "after")

        with capture_logs() as logs:
            report = await bus.emit("x")

        assert report.values == ("after",)
        hook_failures = [entry for entry in logs if entry["event"] == "eventbus.on_error_failed"]
        assert len(hook_failures) == 1
        assert isinstance(hook_failures[0]["exc_info"], StrRaises)


# ---------------------------------------------------------------- BaseExceptions propagate


class Fatal(BaseException):
    """A BaseException of the application's own."""


BASE_EXCEPTIONS: list[Callable[[], BaseException]] = [
    lambda: KeyboardInterrupt("interrupt"),
    lambda: SystemExit(3),
    lambda: GeneratorExit(),
    lambda: asyncio.CancelledError("cancelled"),
    lambda: BaseExceptionGroup("group", [KeyboardInterrupt(), ValueError()]),
    lambda: Fatal("fatal"),
]


BASE_EXCEPTION_IDS = [
    "KeyboardInterrupt",
    "SystemExit",
    "GeneratorExit",
    "CancelledError",
    "BaseExceptionGroup",
    "Fatal",
]


class TestBaseExceptions:
    @pytest.mark.parametrize("make", BASE_EXCEPTIONS, ids=BASE_EXCEPTION_IDS)
    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    @pytest.mark.parametrize("how", ["emit", "emit_sync"])
    async def test_base_exception(
        self, how: str, is_async: bool, make: Callable[[], BaseException]
    ) -> None:
        """A BaseException propagates, stops the emission and leaves the bus working."""
        hooked: list[BaseException] = []
        bus = EventBus("misbehaving", on_error=lambda event, info, error: hooked.append(error))
        after: list[str] = []
        thrown = make()

        def sync_raises(event: Event) -> None:
            raise thrown

        async def async_raises(event: Event) -> None:
            await asyncio.sleep(0)
            raise thrown

        use_async = is_async and how == "emit"
        bus.on("x", async_raises if use_async else sync_raises, once=True)
        bus.on("x", lambda event: after.append("after"), priority=-1)

        with pytest.raises(type(thrown)) as raised:
            await emit_by(bus, how)

        assert raised.value is thrown
        assert after == []
        assert hooked == []
        report = await emit_by(bus, how)  # the once handler was used up, the rest works
        assert after == ["after"]
        assert report.ok
        await asyncio.wait_for(bus.aclose(), 60)  # nothing is left counted as in flight

    async def test_published(self) -> None:
        """A BaseException in a published handler ends its task, not the bus."""
        bus = EventBus("misbehaving")
        thrown = Fatal("in a task")

        async def raises(event: Event) -> None:
            await asyncio.sleep(0)
            raise thrown

        bus.on("x", raises, once=True)
        bus.on("y", lambda event: "fine")

        with capture_logs() as logs:
            task = bus.publish("x")
            await bus.drain()

        assert task.exception() is thrown
        assert [e["exc_info"] for e in logs if e["event"] == "eventbus.publish_failed"] == [thrown]
        assert (await bus.publish("y")).values == ("fine",)
        await asyncio.wait_for(bus.aclose(), 60)


# ---------------------------------------------------------------- awaitables, not coroutines


class Awaitable42:
    def __await__(self) -> Generator[Any, None, int]:
        yield from asyncio.sleep(0).__await__()
        return 42


class AwaitRaises:
    def __await__(self) -> Generator[Any, None, int]:
        raise LookupError("no await for you")


class BadYield:
    def __await__(self) -> Generator[Any, None, int]:
        yield "not a future"
        return 0


def _resolved_later(event: Event) -> asyncio.Future[str]:
    future = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, "resolved later")
    return future


def _resolved_already(event: Event) -> asyncio.Future[str]:
    future = asyncio.get_running_loop().create_future()
    future.set_result("resolved already")
    return future


def _failed_future(event: Event) -> asyncio.Future[str]:
    future = asyncio.get_running_loop().create_future()
    future.set_exception(LookupError("future failed"))
    return future


def _task(event: Event) -> asyncio.Task[str]:
    async def work() -> str:
        await asyncio.sleep(0)
        return "task result"

    return asyncio.get_running_loop().create_task(work())


def _gathered(event: Event) -> asyncio.Future[list[str]]:
    return asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))


AWAITABLE_RESULTS: dict[str, tuple[Callable[[Event], Awaitable[Any]], object]] = {
    "future resolved later": (_resolved_later, "resolved later"),
    "future resolved already": (_resolved_already, "resolved already"),
    "task": (_task, "task result"),
    "gathering future": (_gathered, ["a", "b"]),
    "custom awaitable": (lambda event: Awaitable42(), 42),
}


AWAITABLE_FAILURES: dict[str, tuple[Callable[[Event], Awaitable[Any]], type[Exception]]] = {
    "failed future": (_failed_future, LookupError),
    "__await__ raising": (lambda event: AwaitRaises(), LookupError),
    "bad yield": (lambda event: BadYield(), RuntimeError),
}


class TestAwaitables:
    @pytest.mark.parametrize("kind", AWAITABLE_RESULTS)
    @pytest.mark.parametrize("how", ["emit", "publish"])
    async def test_result(self, bus: EventBus, how: str, kind: str) -> None:
        """An awaitable returned by a sync handler is awaited for its result."""
        handler, expected = AWAITABLE_RESULTS[kind]
        bus.on("x", handler)
        bus.on("x", lambda event: "after")

        report = await emit_by(bus, how)

        assert report.values == (expected, "after")

    @pytest.mark.parametrize("kind", AWAITABLE_FAILURES)
    @pytest.mark.parametrize("how", ["emit", "publish"])
    async def test_failure(self, bus: EventBus, how: str, kind: str) -> None:
        """Awaitable that fails is that handlers failure."""
        handler, error = AWAITABLE_FAILURES[kind]
        bus.on("x", handler)
        bus.on("x", lambda event: "after")

        report = await emit_by(bus, how)

        assert report.values == ("after",)
        assert [type(result.error) for result in report.errors] == [error]

    def test_off_loop(self, bus: EventBus) -> None:
        """A custom awaitable under emit_sync without a loop is awaited."""
        bus.on("x", lambda event: Awaitable42())

        assert bus.emit_sync("x").values == (42,)

    @pytest.mark.parametrize("kind", ["task", "future resolved already", "custom awaitable"])
    async def test_in_loop_fails(self, bus: EventBus, kind: str) -> None:
        """A non-coroutine awaitable under emit_sync in a loop is that handler's failure."""
        handler, _ = AWAITABLE_RESULTS[kind]
        bus.on("x", handler)
        bus.on("x", lambda event: "after")

        report = bus.emit_sync("x")

        assert report.values == ("after",)
        [failure] = report.errors
        assert isinstance(failure.error, RuntimeError)
        assert "emit_sync" in str(failure.error)
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        await asyncio.gather(*others)  # a task the handler made finishes on its own

    @pytest.mark.parametrize("kind", ["future", "task"])
    async def test_timeout(self, bus: EventBus, kind: str) -> None:
        """An awaitable hanging past the timeout is cancelled and reported."""
        made: list[asyncio.Future[Any]] = []

        def hangs(event: Event) -> asyncio.Future[Any]:
            loop = asyncio.get_running_loop()
            made.append(
                loop.create_future()
                if kind == "future"
                else loop.create_task(asyncio.Event().wait())
            )
            return made[-1]

        bus.on("x", hangs, timeout=0.02)
        bus.on("x", lambda event: "after")

        report = await bus.emit("x")
        await asyncio.sleep(0)

        assert report.values == ("after",)
        assert isinstance(report.errors[0].error, TimeoutError)
        assert report.errors[0].duration >= 0.02
        assert made[0].cancelled()


# ---------------------------------------------------------------- hanging, cancelling themselves


async def _hang(event: Event) -> None:
    await asyncio.Event().wait()


class TestHangingAndCancelling:
    @pytest.mark.parametrize("how", ["emit", "publish"])
    async def test_each_hang_cut(self, how: str) -> None:
        """Each hanging handler is cut by its own timeout, and the rest run."""
        hooked: list[type[BaseException]] = []
        bus = EventBus(
            "misbehaving",
            handler_timeout=0.02,
            on_error=lambda event, info, error: hooked.append(type(error)),
        )
        bus.on("x.y", _hang, priority=3)
        bus.on("x.y", lambda event: "between", priority=2)
        bus.on("x.*", _hang, priority=1, timeout=0.01)  # another key: another subscription
        bus.on("x.y", lambda event: "last", priority=-1)

        report = await emit_by(bus, how, "x.y")

        assert report.values == ("between", "last")
        assert [type(result.error) for result in report.errors] == [TimeoutError, TimeoutError]
        assert [result.handler.timeout for result in report.errors] == [0.02, 0.01]
        assert hooked == [TimeoutError, TimeoutError]
        assert (await emit_by(bus, how, "x.y")).values == ("between", "last")

    async def test_hangs_do_not_stop_aclose(self) -> None:
        """Hanging published handlers do not stop aclose from returning."""
        bus = EventBus("misbehaving", handler_timeout=0.02)
        bus.on("x", _hang)
        tasks = [bus.publish("x") for _ in range(20)]

        await asyncio.wait_for(bus.aclose(), 60)

        assert all(isinstance(t.result().errors[0].error, TimeoutError) for t in tasks)

    @pytest.mark.parametrize("timeout", [None, 1.0])
    async def test_self_cancel(self, timeout: float | None) -> None:
        """A handler cancelling its own task cancels the emission, not the bus."""
        bus = EventBus("misbehaving", handler_timeout=timeout)
        after: list[str] = []
        cancelled: list[bool] = []

        async def cancels_itself(event: Event) -> None:
            task = asyncio.current_task()
            assert task is not None
            cancelled.append(task.cancel())
            await asyncio.sleep(0)

        bus.on("x", cancels_itself, once=True)
        bus.on("x", lambda event: after.append("after"), priority=-1)

        emission = asyncio.create_task(bus.emit("x"))
        with pytest.raises(asyncio.CancelledError):
            await emission

        assert emission.cancelled()
        assert cancelled == [True]
        assert after == []
        assert (await bus.emit("x")).ok
        assert after == ["after"]
        await asyncio.wait_for(bus.aclose(), 60)

    async def test_self_cancel_published(self, bus: EventBus) -> None:
        """A published handler cancelling itself cancels only its task."""

        async def cancels_itself(event: Event) -> None:
            if event["n"] == 1:
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
            await asyncio.sleep(0)

        bus.on("x", cancels_itself)
        tasks = [bus.publish("x", n=n) for n in range(3)]

        await bus.drain()

        assert [task.cancelled() for task in tasks] == [False, True, False]
        assert all(task.result().ok for task in (tasks[0], tasks[2]))
        await asyncio.wait_for(bus.aclose(), 60)


# ---------------------------------------------------------------- on_error that emits


class TestOnErrorEmitting:
    async def test_no_loop(self) -> None:
        """An on_error emitting an event whose handler fails does not loop."""
        audit: list[str] = []
        hooked: list[str] = []

        def on_error(event: Event, info: HandlerInfo, error: Exception) -> None:
            hooked.append(event.name)
            bus.emit_sync("audit.failed", failed=event.name)

        bus = EventBus("misbehaving", on_error=on_error)

        def failing(event: Event) -> None:
            raise ValueError(event.name)

        def audit_handler(event: Event) -> None:
            audit.append(event["failed"])
            raise LookupError("the audit fails too")

        bus.on("x", failing)
        bus.on("x", lambda event: "after")
        bus.on("audit.failed", audit_handler)

        with capture_logs() as logs:
            report = await bus.emit("x")

        assert report.values == ("after",)
        assert audit == ["x"]
        assert hooked == ["x", "audit.failed"]
        hook_failures = [e for e in logs if e["event"] == "eventbus.on_error_failed"]
        assert len(hook_failures) == 1
        assert isinstance(hook_failures[0]["exc_info"], ReentrancyError)
        assert hook_failures[0]["exc_info"].chain == ("x", "audit.failed", "audit.failed")

    @pytest.mark.parametrize("how", ["emit", "publish"])
    async def test_children(self, how: str) -> None:
        """An async on_error may emit and publish children of the failed event."""
        children: list[Event] = []

        async def on_error(event: Event, info: HandlerInfo, error: Exception) -> None:
            await bus.emit("audit.emitted", reason=str(error))
            bus.publish("audit.published", reason=str(error))

        bus = EventBus("misbehaving", on_error=on_error)

        def failing(event: Event) -> None:
            raise ValueError("boom")

        bus.on("x", failing)
        bus.on("audit.*", children.append)

        report = await emit_by(bus, how)
        await bus.drain()

        assert [child.name for child in children] == ["audit.emitted", "audit.published"]
        assert all(child.parent_id == report.event.id for child in children)
        assert all(child.depth == 1 and child["reason"] == "boom" for child in children)

    async def test_clears(self) -> None:
        """An on_error that clears the bus lets the current emission finish."""

        def on_error(event: Event, info: HandlerInfo, error: Exception) -> None:
            bus.clear()

        bus = EventBus("misbehaving", on_error=on_error)

        def failing(event: Event) -> None:
            raise ValueError("boom")

        bus.on("x", failing)
        bus.on("x", lambda event: "after")

        report = await bus.emit("x")

        assert report.values == ("after",)
        assert bus.listener_count() == 0
        assert (await bus.emit("x")).results == ()


# ---------------------------------------------------------------- unsubscribing everything


class Listener:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def handle(self, event: Event) -> str:
        self.log.append("weak method")
        return "weak method"


@pytest.fixture
def crowded() -> Iterator[tuple[EventBus, list[str]]]:
    """A bus whose first handler unsubscribes everything, followed by every kind of
    subscription."""
    bus = EventBus("misbehaving")
    log: list[str] = []
    listener = Listener(log)

    def clears(event: Event) -> int:
        log.append("clears")
        return bus.clear()

    async def later_async(event: Event) -> str:
        log.append("async")
        return "async"

    bus.on("x.y", clears, priority=10)
    bus.on("x.y", lambda event: log.append("exact") or "exact", priority=5)
    bus.on("x.*", lambda event: log.append("pattern") or "pattern", priority=4)
    bus.on("*", lambda event: log.append("star") or "star", priority=3)
    bus.once("x.y", lambda event: log.append("once") or "once", priority=2)
    bus.on("x.y", listener.handle, priority=1)
    bus.on("x.y", later_async, priority=0)
    yield bus, log
    del listener


class TestClearingMidEmission:
    async def test_clear_all_mid_emission(
        self, crowded: tuple[EventBus, list[str]], emit: Emitter
    ) -> None:
        """A handler unsubscribing everything mid-emission lets that emission finish."""
        bus, log = crowded

        report = await emit(bus, "x.y")

        expected = ["clears", "exact", "pattern", "star", "once", "weak method", "async"]
        assert log == expected
        assert report.ok
        assert report.values == (7, *expected[1:])
        assert bus.listener_count() == 0
        assert bus.topics() == ()
        assert (await emit(bus, "x.y")).results == ()
        assert log == expected

    async def test_clear_and_resubscribe(self, bus: EventBus) -> None:
        """A handler clearing everything and resubscribing itself stays alone."""
        log: list[str] = []

        def takes_over(event: Event) -> None:
            log.append("takes over")
            bus.clear()
            bus.on("x", takes_over)

        bus.on("x", lambda event: log.append("other"), priority=1)
        bus.on("x", takes_over)
        bus.on("x", lambda event: log.append("later"), priority=-1)

        await bus.emit("x")
        await bus.emit("x")

        assert log == ["other", "takes over", "later", "takes over"]
        assert [info.callback for info in bus.listeners("x")] == [takes_over]


# ---------------------------------------------------------------- predicates that change the bus


class TestPredicatesChangingTheBus:
    async def test_subscribes(self, bus: EventBus) -> None:
        """Predicate subscribing a handler affects only later emissions."""
        log: list[str] = []

        def newcomer(event: Event) -> None:
            log.append(f"newcomer {event['n']}")

        def subscribes(event: Event) -> bool:
            bus.on("x", newcomer, priority=5)
            return True

        bus.on("x", lambda event: log.append(f"guarded {event['n']}"), predicate=subscribes)

        await bus.emit("x", n=1)
        await bus.emit("x", n=2)

        assert log == ["guarded 1", "newcomer 2", "guarded 2"]

    async def test_unsubscribes(self, bus: EventBus) -> None:
        """A predicate unsubscribing its own handler still lets it run once."""
        log: list[int] = []

        def guarded(event: Event) -> None:
            log.append(event["n"])

        def leaves(event: Event) -> bool:
            assert bus.off("x", guarded) is True
            return True

        bus.on("x", guarded, predicate=leaves)

        first = await bus.emit("x", n=1)
        second = await bus.emit("x", n=2)

        assert log == [1]
        assert first.ok
        assert second.results == ()

    @pytest.mark.parametrize("once", [False, True])
    def test_clears(self, bus: EventBus, once: bool) -> None:
        """Predicate clearing the bus lets the emission finish."""
        log: list[str] = []

        def clears(event: Event) -> bool:
            bus.clear()
            return True

        bus.on("x", lambda event: log.append("guarded"), predicate=clears, once=once)
        bus.on("x", lambda event: log.append("later"), priority=-1)

        report = bus.emit_sync("x")

        assert log == ["guarded", "later"]
        assert report.ok
        assert bus.listener_count() == 0

    def test_emits(self, bus: EventBus) -> None:
        """A predicate emitting another event nests it under the current one."""
        nested: list[Event] = []

        def emits(event: Event) -> bool:
            bus.emit_sync("y", n=event["n"])
            return True

        bus.on("x", lambda event: "guarded", predicate=emits)
        bus.on("y", nested.append)

        report = bus.emit_sync("x", n=1)

        assert report.values == ("guarded",)
        assert len(nested) == 1
        assert nested[0].parent_id == report.event.id
        assert nested[0].depth == 1

    def test_loops(self, bus: EventBus) -> None:
        """A predicate emitting its own event is refused as that handler's failure."""
        ran: list[str] = []

        def loops(event: Event) -> bool:
            bus.emit_sync("x")
            return True

        bus.once("x", lambda event: ran.append("guarded"), predicate=loops)
        bus.on("x", lambda event: "other", priority=-1)

        report = bus.emit_sync("x")

        assert ran == []
        assert report.values == ("other",)
        [failure] = report.errors
        assert isinstance(failure.error, ReentrancyError)
        assert failure.error.chain == ("x", "x")
        assert bus.listener_count("x") == 2  # the once handler was not used up

    def test_once_predicate_off(self, bus: EventBus) -> None:
        """The predicate of a once handler unsubscribing it lets it run exactly once."""
        log: list[int] = []

        def guarded(event: Event) -> None:
            log.append(event["n"])

        def leaves(event: Event) -> bool:
            bus.off("x", guarded)
            return True

        bus.once("x", guarded, predicate=leaves)

        for n in range(3):
            bus.emit_sync("x", n=n)

        assert log == [0]
        assert bus.listener_count() == 0


# ---------------------------------------------------------------- other broken handlers


class TestOtherBrokenHandlers:
    def test_lost_call(self, bus: EventBus) -> None:
        """Callable whose class loses call is reported failing."""

        class Fickle:
            def __call__(self, event: Event) -> str:
                return "called"

        bus.on("x", Fickle())
        bus.on("x", lambda event: "after")
        assert bus.emit_sync("x").values == ("called", "after")

        del Fickle.__call__
        report = bus.emit_sync("x")

        assert report.values == ("after",)
        assert isinstance(report.errors[0].error, TypeError)

    def test_huge_return(self, bus: EventBus) -> None:
        """Handler returning a huge value is reported without copying it."""
        huge = bytearray(50_000_000)
        bus.on("x", lambda event: huge)

        report = bus.emit_sync("x")

        assert report.values[0] is huge

    def test_failure_not_kept_alive(self, bus: EventBus) -> None:
        """A failing handler is not kept alive by its reported exception once dropped."""

        class Failing:
            def __call__(self, event: Event) -> None:
                raise ValueError("boom")

        handler = Failing()
        ref = weakref.ref(handler)
        bus.on("x", handler)
        report = bus.emit_sync("x")
        assert not report.ok

        bus.off("x", handler)
        del handler, report
        gc.collect()

        assert ref() is None
