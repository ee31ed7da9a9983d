"""Logging through structlog: what is logged, at which level, and whose configuration wins."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
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
    PayloadError,
    ReentrancyError,
    UnknownEventError,
)

SECRET = "Jeanne-Dupont-FR7630006000011234567890189"
EMITTED_KEYS = {
    "bus",
    "event_name",
    "event_id",
    "parent_id",
    "source",
    "handlers",
    "failed",
    "duration_ms",
}


def entries(logs: list[MutableMapping[str, Any]], message: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == message]


def qualified(function: Any) -> str:
    return f"{function.__module__}.{function.__qualname__}"


class Boom(Exception):
    pass


def fail(event: Event) -> None:
    raise Boom("handler broke")


def fine(event: Event) -> str:
    return "fine"


class Collector:
    """A structlog processor that keeps (level, event dict) and drops the entry."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        self.seen.append((method, dict(event_dict)))
        raise structlog.DropEvent

    def messages(self, level: str | None = None) -> list[str]:
        return [entry["event"] for method, entry in self.seen if level in (None, method)]


# ---------------------------------------------------------------- "eventbus.emitted"


class TestEmitted:
    async def test_facts(self, bus: EventBus, emit: Emitter) -> None:
        """An emission is logged once, at debug, with its facts."""
        bus.on("sale.closed", fine)
        bus.on("sale.closed", fail)
        bus.on("sale.closed", fine, predicate=lambda event: False, priority=-1)

        with capture_logs() as logs:
            report = await emit(bus, "sale.closed", source="caisse", amount=12)
            await bus.drain()

        (entry,) = entries(logs, "eventbus.emitted")
        assert entry["log_level"] == "debug"
        assert entry.keys() >= EMITTED_KEYS
        assert entry["bus"] == "test"
        assert entry["event_name"] == "sale.closed"
        assert entry["event_id"] == report.event.id
        assert entry["parent_id"] is None
        assert entry["source"] == "caisse"
        assert entry["handlers"] == 2  # the one whose predicate said no did not run
        assert entry["failed"] == 1
        assert isinstance(entry["duration_ms"], int | float)
        assert not isinstance(entry["duration_ms"], bool)
        assert entry["duration_ms"] >= 0

    async def test_without_handlers(self, bus: EventBus, emit: Emitter) -> None:
        """An emission without handlers is logged once too."""
        with capture_logs() as logs:
            report = await emit(bus, "nobody.listens")
            await bus.drain()

        (entry,) = entries(logs, "eventbus.emitted")
        assert entry["log_level"] == "debug"
        assert entry.keys() >= EMITTED_KEYS
        assert entry["event_id"] == report.event.id
        assert entry["event_name"] == "nobody.listens"
        assert entry["handlers"] == 0
        assert entry["failed"] == 0
        assert entry["duration_ms"] >= 0

    async def test_nested_parent_id(self, bus: EventBus) -> None:
        """Nested emission is logged with its ``parent_id``."""

        async def forward(event: Event) -> EmitReport:
            return await bus.emit("ledger.updated")

        bus.on("sale.closed", forward)

        with capture_logs() as logs:
            outer = await bus.emit("sale.closed")

        (inner,) = outer.values
        by_name = {entry["event_name"]: entry for entry in entries(logs, "eventbus.emitted")}
        assert by_name.keys() == {"sale.closed", "ledger.updated"}
        assert by_name["ledger.updated"]["event_id"] == inner.event.id
        assert by_name["ledger.updated"]["parent_id"] == outer.event.id
        assert by_name["sale.closed"]["parent_id"] is None

    async def test_each_emission_logged(self, bus: EventBus) -> None:
        """Each emission is logged separately."""
        bus.on("sale.closed", fine)

        with capture_logs() as logs:
            reports = [await bus.emit("sale.closed") for _ in range(3)]

        assert [entry["event_id"] for entry in entries(logs, "eventbus.emitted")] == [
            report.event.id for report in reports
        ]


# ---------------------------------------------------------------- the payload is never logged


class TestPayloadNeverLogged:
    async def test_payload_never_logged(self, bus: EventBus) -> None:
        """Payload values never appear in any log entry."""
        bus.declare("member.created", payload={"iban": str})

        async def forward(event: Event) -> None:
            await bus.emit("member.welcomed", iban=event["iban"])
            await bus.emit("member.created", iban=event["iban"])  # a refused loop

        bus.on("member.created", fail)
        bus.on("member.created", forward)
        bus.on("member.welcomed", fail)

        with capture_logs() as logs:
            await bus.emit("member.created", iban=SECRET, source="signup")
            bus.emit_sync("member.welcomed", iban=SECRET)
            await bus.publish("member.welcomed", iban=SECRET)
            await bus.drain()
            with pytest.raises(PayloadError):
                await bus.emit("member.created", iban=[SECRET])

        assert {entry["event"] for entry in logs} >= {
            "eventbus.emitted",
            "eventbus.handler_failed",
            "eventbus.loop_refused",
        }
        for entry in logs:
            assert SECRET not in repr(entry)
            assert all(SECRET not in repr(value) for value in entry.values())


# ---------------------------------------------------------------- failures


class TestFailures:
    async def test_handler_failed(self, bus: EventBus, emit: Emitter) -> None:
        """A handler failure is logged at error level with the exception."""
        error = Boom("handler broke")

        def failing(event: Event) -> None:
            raise error

        bus.on("sale.closed", failing)
        bus.on("sale.closed", fine)

        with capture_logs() as logs:
            report = await emit(bus, "sale.closed")

        assert [r.error for r in report.errors] == [error]
        assert report.values == ("fine",)
        (entry,) = entries(logs, "eventbus.handler_failed")
        assert entry["log_level"] == "error"
        assert entry["exc_info"] is error
        assert entry["handler"] == qualified(failing)
        assert entry["bus"] == "test"
        assert entry["event_name"] == "sale.closed"
        assert entry["event_id"] == report.event.id
        assert entry["error_type"] == "Boom"

    async def test_each_failure_logged(self, bus: EventBus) -> None:
        """Each failing handler is logged once."""

        async def failing_too(event: Event) -> None:
            raise ValueError("also broke")

        bus.on("sale.closed", fail)
        bus.on("sale.closed", fine)
        bus.on("sale.closed", failing_too)

        with capture_logs() as logs:
            await bus.emit("sale.closed")

        failed = entries(logs, "eventbus.handler_failed")
        assert [entry["handler"] for entry in failed] == [qualified(fail), qualified(failing_too)]
        assert [type(entry["exc_info"]) for entry in failed] == [Boom, ValueError]

    async def test_loop_refused(self, bus: EventBus) -> None:
        """Refused loop is logged at error level with its chain."""

        async def on_closed(event: Event) -> None:
            await bus.emit("ledger.updated")

        async def on_ledger(event: Event) -> None:
            await bus.emit("sale.closed")

        bus.on("sale.closed", on_closed)
        bus.on("ledger.updated", on_ledger)

        with capture_logs() as logs:
            await bus.emit("sale.closed")

        (entry,) = entries(logs, "eventbus.loop_refused")
        assert entry["log_level"] == "error"
        assert entry["chain"] == "sale.closed -> ledger.updated -> sale.closed"
        assert entry["event_name"] == "sale.closed"
        assert entry["bus"] == "test"


# ---------------------------------------------------------------- refusals are not emissions


class TestRefusalsNotEmitted:
    @pytest.mark.parametrize("payload", [{"amount": "12"}, {}], ids=["wrong-type", "missing"])
    async def test_payload_refusal_quiet(
        self, bus: EventBus, emit: Emitter, payload: dict[str, Any]
    ) -> None:
        """A payload refusal is not logged as emitted."""
        bus.declare("sale.closed", payload={"amount": int})
        bus.on("sale.closed", fine)

        with capture_logs() as logs, pytest.raises(PayloadError):
            await emit(bus, "sale.closed", **payload)

        assert entries(logs, "eventbus.emitted") == []

    async def test_unknown_refusal_quiet(self, emit: Emitter) -> None:
        """An unknown-event refusal is not logged as emitted."""
        bus = EventBus("test", strict=True)
        bus.declare("sale.closed")
        bus.on("sale.closed", fine)

        with capture_logs() as logs, pytest.raises(UnknownEventError):
            await emit(bus, "sale.closd")

        assert entries(logs, "eventbus.emitted") == []

    async def test_closed_refusal_quiet(self, bus: EventBus, emit: Emitter) -> None:
        """A closed-bus refusal is not logged as emitted."""
        bus.on("sale.closed", fine)
        await bus.aclose()

        with capture_logs() as logs, pytest.raises(BusClosedError):
            await emit(bus, "sale.closed")

        assert entries(logs, "eventbus.emitted") == []

    async def test_loop_refusal_quiet(self, bus: EventBus) -> None:
        """A re-entrancy refusal is not logged as emitted."""
        caught: list[ReentrancyError] = []

        async def loop_async(event: Event) -> None:
            try:
                await bus.emit("sale.closed")
            except ReentrancyError as error:
                caught.append(error)
            try:
                bus.publish("sale.closed")
            except ReentrancyError as error:
                caught.append(error)

        def loop_sync(event: Event) -> None:
            try:
                bus.emit_sync("stock.changed")
            except ReentrancyError as error:
                caught.append(error)

        bus.on("sale.closed", loop_async)
        bus.on("stock.changed", loop_sync)

        with capture_logs() as logs:
            first = await bus.emit("sale.closed")
            second = bus.emit_sync("stock.changed")
            await bus.drain()

        assert len(caught) == 3
        assert [entry["event_id"] for entry in entries(logs, "eventbus.emitted")] == [
            first.event.id,
            second.event.id,
        ]


# ---------------------------------------------------------------- the "event" key


class TestEventKey:
    async def test_event_key_is_message(self, bus: EventBus) -> None:
        """Event key is the message never the event name."""

        async def loop(event: Event) -> None:
            await bus.emit("sale.closed")

        bus.on("sale.closed", fail)
        bus.on("sale.closed", loop)

        with capture_logs() as logs:
            await bus.emit("sale.closed")
            bus.emit_sync("member.created")

        assert len(logs) >= 4
        for entry in logs:
            assert entry["event"].startswith("eventbus.")
            assert entry["event"] not in {"sale.closed", "member.created"}


# ---------------------------------------------------------------- structlog configuration


class ListLogger:
    """The final logger: keeps (method, event dict) for every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda **event_dict: self.calls.append((method, event_dict))


def _as_kwargs(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    return dict(event_dict)


class TestStructlogConfig:
    async def test_never_configures(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Package never configures structlog."""
        structlog.reset_defaults()
        assert not structlog.is_configured()

        bus = EventBus("test")
        bus.on("sale.closed", fail)
        bus.on("sale.closed", lambda event: bus.emit_sync("sale.closed"))
        await bus.emit("sale.closed")
        bus.emit_sync("member.created")
        await bus.publish("member.created")
        await bus.aclose()

        assert not structlog.is_configured()
        assert "eventbus.emitted" in capsys.readouterr().out  # structlog's default output

    def test_import_configures_nothing(self) -> None:
        """Importing the package does not configure structlog."""
        code = (
            "import structlog, eventbus\n"
            "bus = eventbus.EventBus()\n"
            "bus.emit_sync('sale.closed')\n"
            "print(structlog.is_configured())\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )

        assert done.stdout.splitlines()[-1] == "False"

    async def test_later_configuration(self) -> None:
        """Configuration made after the bus was created is honoured."""
        bus = EventBus("test")
        bus.on("sale.closed", fail)
        collector = Collector()

        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            processors=[collector],
        )
        await bus.emit("sale.closed")
        bus.emit_sync("sale.closed")

        assert collector.messages("debug") == []
        assert collector.messages("error") == ["eventbus.handler_failed"] * 2

        collector.seen.clear()
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        await bus.emit("sale.closed")
        bus.emit_sync("sale.closed")

        assert collector.messages("debug") == ["eventbus.emitted"] * 2
        assert collector.messages("error") == ["eventbus.handler_failed"] * 2

    async def test_later_debug_level(self) -> None:
        """Debug enabled after the bus was created filtered is honoured."""
        collector = Collector()
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            processors=[collector],
        )
        bus = EventBus("test")
        await bus.emit("sale.closed")
        assert collector.seen == []

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET))
        report = await bus.emit("sale.closed")

        assert [(method, entry["event_id"]) for method, entry in collector.seen] == [
            ("debug", report.event.id)
        ]

    async def test_later_processors(self) -> None:
        """Processors configured after the bus was created are used."""
        bus = EventBus("test")
        first, second = Collector(), Collector()

        structlog.configure(processors=[first])
        await bus.emit("sale.closed")
        structlog.configure(processors=[second])
        await bus.emit("sale.closed")

        assert first.messages() == ["eventbus.emitted"]
        assert second.messages() == ["eventbus.emitted"]

    async def test_given_logger(self) -> None:
        """Bus logs to the logger it was given."""
        sink = ListLogger()
        bus = EventBus("test", logger=structlog.wrap_logger(sink, processors=[_as_kwargs]))
        bus.on("sale.closed", fail)

        with capture_logs() as global_logs:
            report = await bus.emit("sale.closed")

        assert global_logs == []
        assert [(method, entry["event"]) for method, entry in sink.calls] == [
            ("error", "eventbus.handler_failed"),
            ("debug", "eventbus.emitted"),
        ]
        assert sink.calls[1][1]["event_id"] == report.event.id

    async def test_given_filtering_logger(self) -> None:
        """A bus given a bound logger filtering debug logs only errors."""
        sink = ListLogger()
        logger = structlog.make_filtering_bound_logger(logging.INFO)(sink, [_as_kwargs], {})
        bus = EventBus("test", logger=logger)
        bus.on("sale.closed", fail)

        await bus.emit("sale.closed")
        bus.emit_sync("sale.closed")

        assert [(method, entry["event"]) for method, entry in sink.calls] == [
            ("error", "eventbus.handler_failed"),
            ("error", "eventbus.handler_failed"),
        ]


# ---------------------------------------------------------------- stdlib integration


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def stdlib_records() -> Iterator[tuple[logging.Logger, _Records]]:
    """structlog routed to stdlib logging; records of the "eventbus" logger collected."""
    structlog.configure(
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
    )
    stdlib_logger = logging.getLogger("eventbus")
    handler = _Records()
    old_level, old_propagate = stdlib_logger.level, stdlib_logger.propagate
    stdlib_logger.addHandler(handler)
    stdlib_logger.propagate = False
    try:
        yield stdlib_logger, handler
    finally:
        stdlib_logger.removeHandler(handler)
        stdlib_logger.setLevel(old_level)
        stdlib_logger.propagate = old_propagate


class TestStdlib:
    async def test_level(self, stdlib_records: tuple[logging.Logger, _Records]) -> None:
        """Stdlib logging level is honoured dynamically."""
        stdlib_logger, handler = stdlib_records
        stdlib_logger.setLevel(logging.INFO)
        bus = EventBus("test")
        bus.on("sale.closed", fail)

        await bus.emit("sale.closed")

        assert handler.messages(logging.DEBUG) == []
        (failure,) = handler.messages(logging.ERROR)
        assert "eventbus.handler_failed" in failure

        handler.records.clear()
        stdlib_logger.setLevel(logging.DEBUG)
        report = await bus.emit("sale.closed")
        bus.emit_sync("member.created")

        debug = handler.messages(logging.DEBUG)
        assert len(debug) == 2
        assert all("eventbus.emitted" in message for message in debug)
        assert report.event.id in debug[0]
        assert len(handler.messages(logging.ERROR)) == 1

        handler.records.clear()
        stdlib_logger.setLevel(logging.WARNING)
        await bus.emit("sale.closed")

        assert handler.messages(logging.DEBUG) == []
        assert len(handler.messages(logging.ERROR)) == 1

    async def test_later_stdlib_config(self, bus: EventBus) -> None:
        """stdlib logging configured after the bus was created is honoured."""
        bus.on("sale.closed", fine)
        await bus.emit("sale.closed")  # first emission under the conftest's configuration
        records = _Records()
        stdlib_logger = logging.getLogger("eventbus")
        old_level, old_propagate = stdlib_logger.level, stdlib_logger.propagate
        stdlib_logger.addHandler(records)
        stdlib_logger.propagate = False
        try:
            stdlib_logger.setLevel(logging.DEBUG)
            structlog.configure(
                wrapper_class=structlog.stdlib.BoundLogger,
                logger_factory=structlog.stdlib.LoggerFactory(),
                processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
            )
            report = await bus.emit("sale.closed")
        finally:
            stdlib_logger.removeHandler(records)
            stdlib_logger.setLevel(old_level)
            stdlib_logger.propagate = old_propagate

        (message,) = records.messages(logging.DEBUG)
        assert "eventbus.emitted" in message
        assert report.event.id in message
