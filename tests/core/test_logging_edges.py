"""Logging that fails never changes what an emission does, and no log line or
traceback shows a payload value (issue 12, items 3 and 4)."""

from __future__ import annotations

import io
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import pytest
import structlog

from eventbus import EmitReport, Event, EventBus, PayloadError, ReentrancyError

SECRET = "secret@example.com"

Emit = Callable[[EventBus, str], Awaitable[EmitReport]]


async def _await_emit(bus: EventBus, name: str) -> EmitReport:
    return await bus.emit(name, email=SECRET)


async def _emit_sync(bus: EventBus, name: str) -> EmitReport:
    return bus.emit_sync(name, email=SECRET)


async def _publish(bus: EventBus, name: str) -> EmitReport:
    return await bus.publish(name, email=SECRET)


MODES = pytest.mark.parametrize(
    "emit", [_await_emit, _emit_sync, _publish], ids=["emit", "emit_sync", "publish"]
)


class Boom(Exception):
    pass


class Unprintable(Exception):
    """An exception that no renderer can turn into text."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _raising_processor(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    raise RuntimeError("processor broke")


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _failing_bus(hooked: list[Exception], ran: list[str]) -> EventBus:
    bus = EventBus("edges", on_error=lambda event, info, error: hooked.append(error))

    def first(event: Event) -> None:
        ran.append("first")
        raise Boom("first failed")

    bus.on("sale.closed", first, priority=1)
    bus.on("sale.closed", lambda event: ran.append("second"))
    return bus


def _closed_stream_logger() -> Any:
    stream = io.StringIO()
    stream.close()
    return structlog.wrap_logger(
        structlog.PrintLogger(stream), processors=[structlog.processors.JSONRenderer()]
    )


class TestLoggingFailureIsolated:
    @MODES
    async def test_raising_processor_keeps_handlers_running(self, emit: Emit) -> None:
        """A processor that raises: every handler runs, on_error is called, the report returns."""
        structlog.configure(processors=[_raising_processor])
        hooked: list[Exception] = []
        ran: list[str] = []
        report = await emit(_failing_bus(hooked, ran), "sale.closed")
        assert ran == ["first", "second"]
        assert [type(error) for error in hooked] == [Boom]
        assert len(report.errors) == 1

    @MODES
    async def test_failing_debug_line_does_not_raise(self, emit: Emit) -> None:
        """A per-emission debug line that fails does not make the emission raise."""
        structlog.configure(processors=[_raising_processor])
        bus = EventBus("edges")
        bus.on("sale.closed", lambda event: "ok")
        report = await emit(bus, "sale.closed")
        assert report.values == ("ok",)

    @MODES
    async def test_closed_stream_keeps_handlers_running(self, emit: Emit) -> None:
        """A logger writing to a closed stream changes nothing for the emission."""
        hooked: list[Exception] = []
        ran: list[str] = []
        bus = EventBus(
            "edges", logger=_closed_stream_logger(), on_error=lambda e, i, x: hooked.append(x)
        )
        bus.on("sale.closed", lambda event: ran.append("first") or 1 / 0, priority=1)
        bus.on("sale.closed", lambda event: ran.append("second"))
        report = await emit(bus, "sale.closed")
        assert ran == ["first", "second"]
        assert [type(error) for error in hooked] == [ZeroDivisionError]
        assert len(report.errors) == 1

    @pytest.mark.parametrize(
        "processor",
        [structlog.processors.format_exc_info, structlog.processors.dict_tracebacks],
        ids=["format_exc_info", "dict_tracebacks"],
    )
    @MODES
    async def test_unrenderable_exception_keeps_handlers_running(
        self, emit: Emit, processor: Any
    ) -> None:
        """A handler exception whose str and repr raise cannot break the emission."""
        structlog.configure(processors=[processor, structlog.processors.JSONRenderer()])
        hooked: list[Exception] = []
        ran: list[str] = []
        bus = EventBus("edges", on_error=lambda e, i, x: hooked.append(x))

        def unprintable(event: Event) -> None:
            ran.append("first")
            raise Unprintable

        bus.on("sale.closed", unprintable, priority=1)
        bus.on("sale.closed", lambda event: ran.append("second"))
        report = await emit(bus, "sale.closed")
        assert ran == ["first", "second"]
        assert [type(error) for error in hooked] == [Unprintable]
        assert len(report.errors) == 1

    async def test_failure_reported_on_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The logging failure itself is one stderr line naming the entry and the error."""
        structlog.configure(processors=[_raising_processor])
        bus = EventBus("edges")
        bus.on("sale.closed", lambda event: 1 / 0)
        await bus.emit("sale.closed", email=SECRET)
        err = capsys.readouterr().err
        assert "eventbus.handler_failed" in err
        assert "processor broke" in err
        assert SECRET not in err

    async def test_emit_received_survives_logging_failure(self) -> None:
        """emit_received does not raise when logging fails."""
        structlog.configure(processors=[_raising_processor])
        bus = EventBus("edges")
        bus.on("sale.closed", lambda event: 1 / 0)
        report = await bus.emit_received(Event("sale.closed", {"email": SECRET}))
        assert len(report.errors) == 1

    async def test_loop_refusal_raises_reentrancy_error(self) -> None:
        """A loop refused while logging fails still raises ReentrancyError, not the log error."""
        structlog.configure(processors=[_raising_processor])
        bus = EventBus("edges")
        errors: list[Exception] = []

        async def again(event: Event) -> None:
            try:
                await bus.emit("sale.closed")
            except ReentrancyError as error:
                errors.append(error)

        bus.on("sale.closed", again)
        await bus.emit("sale.closed")
        assert [type(error) for error in errors] == [ReentrancyError]


def _capture_json() -> io.StringIO:
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    return out


class TestNoPayloadInTracebacks:
    @MODES
    async def test_handler_failure(self, emit: Emit) -> None:
        """A failing handler's logged traceback shows no payload value."""
        out = _capture_json()
        bus = EventBus("edges")
        bus.on("sale.closed", lambda event: 1 / 0)
        await emit(bus, "sale.closed")
        assert "handler_failed" in out.getvalue()
        assert SECRET not in out.getvalue()

    @MODES
    async def test_nested_payload_refusal(self, emit: Emit) -> None:
        """A nested emission refused for its payload logs no payload value."""
        out = _capture_json()
        bus = EventBus("edges")
        bus.declare("ledger.updated", payload={"email": int})

        async def nested(event: Event) -> None:
            await bus.emit("ledger.updated", email=event["email"])

        def nested_sync(event: Event) -> None:
            bus.emit_sync("ledger.updated", email=event["email"])

        bus.on("sale.closed", nested_sync if emit is _emit_sync else nested)
        report = await emit(bus, "sale.closed")
        assert isinstance(report.errors[0].error, PayloadError)
        assert "PayloadError" in out.getvalue()
        assert SECRET not in out.getvalue()

    @MODES
    async def test_nested_loop_refusal(self, emit: Emit) -> None:
        """A nested emission refused as a loop logs no payload value."""
        out = _capture_json()
        bus = EventBus("edges")

        async def again(event: Event) -> None:
            await bus.emit("sale.closed", email=event["email"])

        def again_sync(event: Event) -> None:
            bus.emit_sync("sale.closed", email=event["email"])

        bus.on("sale.closed", again_sync if emit is _emit_sync else again)
        report = await emit(bus, "sale.closed")
        assert isinstance(report.errors[0].error, ReentrancyError)
        assert "ReentrancyError" in out.getvalue()
        assert SECRET not in out.getvalue()

    @MODES
    async def test_top_level_payload_error(self, emit: Emit) -> None:
        """A top-level PayloadError logged by the caller with exc_info shows no payload value."""
        out = _capture_json()
        bus = EventBus("edges")
        bus.declare("sale.closed", payload={"email": int})
        try:
            await emit(bus, "sale.closed")
        except PayloadError:
            structlog.get_logger("app").error("app.failed", exc_info=True)
        else:  # pragma: no cover - the emission must be refused
            pytest.fail("no PayloadError")
        assert "PayloadError" in out.getvalue()
        assert SECRET not in out.getvalue()

    async def test_emit_received_payload_error(self) -> None:
        """A received event refused for its payload shows no payload value."""
        out = _capture_json()
        bus = EventBus("edges")
        bus.declare("sale.closed", payload={"email": int})
        try:
            await bus.emit_received(Event("sale.closed", {"email": SECRET}))
        except PayloadError:
            structlog.get_logger("app").error("app.failed", exc_info=True)
        assert "PayloadError" in out.getvalue()
        assert SECRET not in out.getvalue()


def test_stderr_write_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reporting a logging failure on a broken stderr does not raise either."""
    structlog.configure(processors=[_raising_processor])
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    bus = EventBus("edges")
    bus.on("sale.closed", lambda event: 1 / 0)
    assert len(bus.emit_sync("sale.closed").errors) == 1
