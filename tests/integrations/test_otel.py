"""eventbus.otel: spans per emission and per handler run, their nesting, the two metrics."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from emitters import Emitter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from eventbus import Event, EventBus
from eventbus.otel import instrument, uninstrument

SECRET = "card-4242-4242"


class Telemetry:
    """An SDK tracer provider and meter provider that keep what they record in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("tests")

    def instrument(self, bus: EventBus) -> None:
        instrument(bus, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        (found,) = [span for span in self.spans() if span.name == name]
        return found

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for each in scope.metrics
            if each.name == metric
            for point in each.data.data_points
        ]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    made = Telemetry()
    yield made
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


@pytest.fixture
def traced(bus: EventBus, telemetry: Telemetry) -> EventBus:
    telemetry.instrument(bus)
    return bus


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def noop(event: Event) -> None:
    pass


def broken(event: Event) -> None:
    raise ValueError("refused")


class TestEmissionSpans:
    async def test_emission_is_a_span_with_the_listed_attributes(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        traced.on("order.placed", noop)
        event = (await emit(traced, "order.placed", total=3)).event
        span = telemetry.span("emit order.placed")
        assert dict(span.attributes or {}) == {
            "eventbus.bus": "test",
            "eventbus.event.name": "order.placed",
            "eventbus.event.id": event.id,
            "eventbus.event.depth": 0,
            "eventbus.handlers": 1,
            "eventbus.failed": 0,
        }
        assert span.status.status_code is StatusCode.UNSET

    async def test_nested_emission_span_has_parent_id_and_source(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        inner: list[Event] = []
        traced.on(
            "outer", lambda event: inner.append(traced.emit_sync("inner", source="shop").event)
        )
        outer = (await emit(traced, "outer")).event
        attributes = dict(telemetry.span("emit inner").attributes or {})
        assert attributes["eventbus.event.parent_id"] == outer.id
        assert attributes["eventbus.source"] == "shop"
        assert attributes["eventbus.event.depth"] == 1
        assert attributes["eventbus.handlers"] == 0

    async def test_emission_with_no_handler_is_a_span_too(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        await emit(traced, "nobody.listens")
        assert telemetry.span("emit nobody.listens").attributes["eventbus.handlers"] == 0  # type: ignore[index]

    async def test_emission_span_is_a_child_of_the_current_span(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        with telemetry.tracer.start_as_current_span("request") as request:
            await traced.emit("order.placed")
        span = telemetry.span("emit order.placed")
        assert parent_of(span) == request.get_span_context().span_id
        assert span.context.trace_id == request.get_span_context().trace_id


class TestHandlerSpans:
    async def test_handler_run_is_a_child_span_named_after_the_event(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        traced.on("order.placed", noop)
        await emit(traced, "order.placed")
        emission, handler = (
            telemetry.span("emit order.placed"),
            telemetry.span("handle order.placed"),
        )
        assert parent_of(handler) == emission.context.span_id
        assert dict(handler.attributes or {}) == {"eventbus.handler.name": f"{__name__}.noop"}

    async def test_failed_handler_span_has_error_status_and_the_exception(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        traced.on("order.placed", broken)
        await emit(traced, "order.placed")
        handler = telemetry.span("handle order.placed")
        assert handler.status.status_code is StatusCode.ERROR
        (recorded,) = handler.events
        assert recorded.name == "exception"
        assert dict(recorded.attributes or {})["exception.type"] == "ValueError"
        assert telemetry.span("emit order.placed").attributes["eventbus.failed"] == 1  # type: ignore[index]

    async def test_skipped_subscription_has_no_span(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        traced.on("order.placed", noop, predicate=lambda event: False)
        await traced.emit("order.placed")
        assert [span.name for span in telemetry.spans()] == ["emit order.placed"]

    async def test_nested_emission_span_is_a_child_of_the_handler_span(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        traced.on("outer", lambda event: traced.emit_sync("inner"))
        await emit(traced, "outer")
        handler, inner = telemetry.span("handle outer"), telemetry.span("emit inner")
        assert parent_of(inner) == handler.context.span_id
        assert inner.context.trace_id == handler.context.trace_id

    async def test_async_handler_emission_is_a_child_of_its_span(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        async def outer(event: Event) -> None:
            await asyncio.sleep(0)
            await traced.emit("inner")

        traced.on("outer", outer)
        await emit(traced, "outer")
        assert (
            parent_of(telemetry.span("emit inner"))
            == telemetry.span("handle outer").context.span_id
        )

    async def test_published_emission_span_is_a_child_of_the_span_that_published_it(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        tasks: list[asyncio.Task[Any]] = []
        traced.on("outer", lambda event: tasks.append(traced.publish("later")))
        await traced.emit("outer")
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        later = telemetry.span("emit later")
        assert parent_of(later) == telemetry.span("handle outer").context.span_id

    async def test_publish_from_a_user_span_continues_it(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        with telemetry.tracer.start_as_current_span("job") as job:
            task = traced.publish("later")
        await asyncio.wait_for(task, 60)
        assert parent_of(telemetry.span("emit later")) == job.get_span_context().span_id

    def test_emissions_from_threads_are_separate_traces(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        traced.on("outer", lambda event: traced.emit_sync("inner"))
        barrier = threading.Barrier(4, timeout=60)

        def emitter() -> None:
            barrier.wait()
            for _ in range(25):
                traced.emit_sync("outer")

        threads = [threading.Thread(target=emitter) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        spans = telemetry.spans()
        by_id = {span.context.span_id: span for span in spans}
        inners = [span for span in spans if span.name == "emit inner"]
        assert len(inners) == 100
        for inner in inners:
            handler = by_id[parent_of(inner)]  # type: ignore[index]
            assert handler.name == "handle outer"
            emission = by_id[parent_of(handler)]  # type: ignore[index]
            assert emission.name == "emit outer"
            assert emission.parent is None
        assert len({span.context.trace_id for span in inners}) == 100


class TestNoPayload:
    async def test_no_payload_value_is_on_a_span_or_a_metric(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        traced.on("order.placed", broken)
        traced.on("order.placed", noop)
        await emit(traced, "order.placed", card=SECRET, nested={"card": SECRET})
        for span in telemetry.spans():
            values = list((span.attributes or {}).values())
            values += [value for each in span.events for value in (each.attributes or {}).values()]
            assert all(SECRET not in str(value) for value in values)
            assert "card" not in str(dict(span.attributes or {}))
        assert SECRET not in telemetry.reader.get_metrics_data().to_json()  # type: ignore[union-attr]


class TestMetrics:
    async def test_emissions_are_counted_by_name_and_outcome(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        traced.on("order.failed", broken)
        traced.on("order.placed", noop)
        for _ in range(2):
            await emit(traced, "order.placed")
        await emit(traced, "order.failed")
        counts = {
            tuple(sorted(point.attributes.items())): point.value
            for point in telemetry.points("eventbus.emissions")
        }
        assert counts == {
            (("eventbus.event.name", "order.placed"), ("eventbus.outcome", "ok")): 2,
            (("eventbus.event.name", "order.failed"), ("eventbus.outcome", "failed")): 1,
        }

    async def test_handler_durations_are_recorded_in_seconds_by_handler_and_outcome(
        self, traced: EventBus, telemetry: Telemetry, emit: Emitter
    ) -> None:
        traced.on("order.placed", broken)
        traced.on("order.placed", noop)
        await emit(traced, "order.placed")
        await emit(traced, "order.placed")
        points = {
            tuple(sorted(point.attributes.items())): point
            for point in telemetry.points("eventbus.handler.duration")
        }
        assert set(points) == {
            (("eventbus.handler.name", f"{__name__}.broken"), ("eventbus.outcome", "failed")),
            (("eventbus.handler.name", f"{__name__}.noop"), ("eventbus.outcome", "ok")),
        }
        for point in points.values():
            assert point.count == 2
            assert 0 <= point.sum < 60  # seconds, not milliseconds or nanoseconds
        data = telemetry.reader.get_metrics_data()
        assert data is not None
        units = {
            each.name: each.unit
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for each in scope.metrics
        }
        assert units["eventbus.handler.duration"] == "s"


class TestInstrumenting:
    async def test_instrumenting_twice_traces_each_emission_once(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        telemetry.instrument(traced)
        traced.on("order.placed", noop)
        await traced.emit("order.placed")
        assert sorted(span.name for span in telemetry.spans()) == [
            "emit order.placed",
            "handle order.placed",
        ]

    async def test_uninstrumented_bus_makes_no_more_spans(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        traced.on("order.placed", noop)
        await traced.emit("order.placed")
        uninstrument(traced)
        await traced.emit("order.placed")
        assert len(telemetry.spans()) == 2
        assert traced._router.routes["order.placed"].intercept is None

    def test_uninstrumenting_a_bus_never_instrumented_is_harmless(self, bus: EventBus) -> None:
        uninstrument(bus)

    async def test_bus_can_be_instrumented_again_after_uninstrument(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        uninstrument(traced)
        telemetry.instrument(traced)
        await traced.emit("order.placed")
        assert [span.name for span in telemetry.spans()] == ["emit order.placed"]

    def test_instrumented_bus_can_be_garbage_collected(self, telemetry: Telemetry) -> None:
        bus = EventBus("short-lived")
        telemetry.instrument(bus)
        bus.emit_sync("order.placed")
        collected = weakref.ref(bus)
        del bus
        gc.collect()
        assert collected() is None

    @pytest.mark.parametrize("function", [instrument, uninstrument])
    def test_something_else_than_a_bus_is_a_type_error(self, function: Any) -> None:
        with pytest.raises(TypeError, match="needs an EventBus, not str"):
            function("bus")

    async def test_cancelled_emission_span_has_error_status(
        self, traced: EventBus, telemetry: Telemetry
    ) -> None:
        started = asyncio.Event()

        async def waits(event: Event) -> None:
            started.set()
            await asyncio.Event().wait()

        traced.on("order.placed", waits)
        task = traced.publish("order.placed")
        await asyncio.wait_for(started.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert telemetry.span("emit order.placed").status.status_code is StatusCode.ERROR
        assert telemetry.span("handle order.placed").status.status_code is StatusCode.ERROR


def test_importing_without_opentelemetry_says_which_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import eventbus.otel\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'eventbus[otel]'" in done.stdout
