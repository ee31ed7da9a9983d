"""The example shop, traced: each request's span is the root of the emissions it caused,
and the tracing guide shows the trace ``examples.shop.trace_tree`` renders."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from examples.shop.app import create_app
from examples.shop.trace_tree import render, traced_requests

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "tracing.md"


class TracedShop:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.app = create_app(tracer_provider=self.provider)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://shop.test"
        )

    def root_of(self, span: ReadableSpan) -> ReadableSpan:
        by_id = {each.context.span_id: each for each in self.exporter.get_finished_spans()}
        while span.parent is not None:
            span = by_id[span.parent.span_id]
        return span


@pytest.fixture
async def shop() -> AsyncIterator[TracedShop]:
    traced = TracedShop()
    async with traced.client:
        yield traced
    traced.provider.shutdown()


async def test_request_span_is_the_root_of_the_emissions_it_caused(shop: TracedShop) -> None:
    response = await shop.client.post("/sessions/7/close", json={"total_cents": 1250})
    assert response.status_code == 200
    spans = shop.exporter.get_finished_spans()
    emissions = [span for span in spans if span.name.startswith("emit ")]
    assert {span.name for span in emissions} == {"emit sale.closed", "emit ledger.updated"}
    for span in emissions:
        assert shop.root_of(span).name == "POST /sessions/{session_id}/close"


async def test_sync_route_emissions_in_a_worker_thread_are_in_the_request_trace(
    shop: TracedShop,
) -> None:
    response = await shop.client.post("/articles", json={"sku": "A1", "name": "Apple"})
    assert response.status_code == 201
    emitted = [s for s in shop.exporter.get_finished_spans() if s.name == "emit article.imported"]
    assert [shop.root_of(span).name for span in emitted] == ["POST /articles"]


async def test_published_emission_is_in_the_request_trace(shop: TracedShop) -> None:
    response = await shop.client.post("/members", json={"name": "Ada", "email": "a@b.c"})
    assert response.status_code == 202
    await shop.app.state.events.drain()
    (created,) = [s for s in shop.exporter.get_finished_spans() if s.name == "emit member.created"]
    assert shop.root_of(created).name == "POST /members"


async def test_the_guide_shows_the_rendered_trace() -> None:
    page = GUIDE.read_text(encoding="utf-8")
    shown = re.search(r"```text\n(.*?)\n```", page, re.DOTALL)
    assert shown is not None
    assert shown.group(1) == await traced_requests()


def test_render_puts_children_under_their_parent() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("first"):
            tracer.start_span("leaf").end()
        tracer.start_span("second").end()
    assert render(exporter.get_finished_spans()) == ("root\n├── first\n│   └── leaf\n└── second")
