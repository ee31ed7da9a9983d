"""The bridge carries the headers of the bus's interceptors (a W3C trace context): the
receiving bus's emission span continues the emitting trace. Entries with bad headers are
refused as bad entries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from bridge_helpers import STREAM, Watch, consumer, create_group, entry, flush
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.otel import instrument
from eventbus.redis import RedisBridge
from eventbus.redis._entries import BadEntry, decode, encode

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Spans:
    """One process's tracer provider, its spans kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def named(self, name: str) -> ReadableSpan:
        (found,) = [span for span in self.exporter.get_finished_spans() if span.name == name]
        return found


@pytest.fixture
def producer_spans() -> Iterator[Spans]:
    spans = Spans()
    yield spans
    spans.provider.shutdown()


@pytest.fixture
def consumer_spans() -> Iterator[Spans]:
    spans = Spans()
    yield spans
    spans.provider.shutdown()


@asynccontextmanager
async def producer(client: Redis, spans: Spans) -> AsyncIterator[tuple[EventBus, RedisBridge]]:
    """Bus "a", instrumented, forwarding every emission to the stream."""
    bus = EventBus("a")
    instrument(bus, tracer_provider=spans.provider)
    async with RedisBridge(bus, client, stream=STREAM, forward="order.*") as bridge:
        yield bus, bridge


# ---------------------------------------------------------------- across processes


async def test_consumers_emission_span_continues_the_producers_trace(
    redis_client: Redis, watch: Watch, producer_spans: Spans, consumer_spans: Spans
) -> None:
    await create_group(redis_client)
    bus_b = EventBus("b")
    instrument(bus_b, tracer_provider=consumer_spans.provider)
    bus_b.on("order.placed", watch.record)
    async with (
        producer(redis_client, producer_spans) as (bus_a, forwarder),
        consumer(bus_b, redis_client),
    ):
        await bus_a.emit("order.placed", total=12)
        await flush(forwarder)
        await watch.until(lambda: len(watch.handled) == 1)

    sent = producer_spans.named("emit order.placed")
    received = consumer_spans.named("emit order.placed")
    assert received.context.trace_id == sent.context.trace_id
    assert received.parent is not None
    assert received.parent.span_id == sent.context.span_id
    assert received.parent.is_remote
    assert dict(received.attributes or {})["eventbus.bus"] == "b"
    handler = consumer_spans.named("handle order.placed")
    assert handler.parent is not None
    assert handler.parent.span_id == received.context.span_id


async def test_nested_forwarded_emission_continues_the_request_trace(
    redis_client: Redis, watch: Watch, producer_spans: Spans, consumer_spans: Spans
) -> None:
    await create_group(redis_client)
    bus_b = EventBus("b")
    instrument(bus_b, tracer_provider=consumer_spans.provider)
    bus_b.on("order.placed", watch.record)
    tracer = producer_spans.provider.get_tracer("tests")
    async with (
        producer(redis_client, producer_spans) as (bus_a, forwarder),
        consumer(bus_b, redis_client),
    ):

        async def check_out(event: Event) -> None:
            await bus_a.emit("order.placed")

        bus_a.on("cart.checked_out", check_out)
        with tracer.start_as_current_span("request") as request:
            await bus_a.emit("cart.checked_out")
        await flush(forwarder)
        await watch.until(lambda: len(watch.handled) == 1)

    trace_id = request.get_span_context().trace_id
    sent = producer_spans.named("emit order.placed")
    assert sent.parent is not None
    assert sent.parent.span_id == producer_spans.named("handle cart.checked_out").context.span_id
    received = consumer_spans.named("emit order.placed")
    assert received.context.trace_id == trace_id
    assert received.parent is not None
    assert received.parent.span_id == sent.context.span_id


async def test_uninstrumented_producer_sends_no_headers(bus: EventBus, redis_client: Redis) -> None:
    async with RedisBridge(bus, redis_client, stream=STREAM, forward="order.*") as bridge:
        await bus.emit("order.placed")
        await flush(bridge)
    (raw,) = await redis_client.xrange(STREAM)
    assert b"headers" not in raw[1]


# ---------------------------------------------------------------- the headers field


def test_headers_are_encoded_as_a_json_object() -> None:
    fields = encode(Event("order.placed", {}), (), "", STREAM, {"traceparent": TRACEPARENT})
    assert json.loads(fields["headers"]) == {"traceparent": TRACEPARENT}


def test_headers_survive_the_round_trip() -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=value"}
    received = decode(encode(Event("order.placed", {}), (), "", STREAM, headers))
    assert dict(received.headers) == headers


def test_entry_without_headers_decodes_with_none() -> None:
    assert dict(decode(entry()).headers) == {}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"traceparent": 1}', id="not-a-str-value"),
        pytest.param('{"Trace Parent": "x"}', id="bad-name"),
        pytest.param('{"traceparent": "a\\nb"}', id="control-character"),
        pytest.param(json.dumps({f"h{i}": "x" for i in range(17)}), id="too-many"),
        pytest.param(json.dumps({"h": "x" * 30_000}), id="too-long"),
        pytest.param("[" * 100_000, id="deep"),
        pytest.param("{", id="not-json"),
    ],
)
def test_entry_with_bad_headers_is_a_bad_entry(headers: str) -> None:
    with pytest.raises(BadEntry, match="malformed"):
        decode(entry(headers=headers))


def test_encoding_bad_headers_is_refused() -> None:
    with pytest.raises(ValueError, match="header name"):
        encode(Event("order.placed", {}), (), "", STREAM, {"Bad Name": "x"})
