"""Render the trace of one request to the shop as a text tree.

``python -m examples.shop.trace_tree`` runs the application in-process with
an in-memory span exporter, registers a member and closes a till session over
HTTP, and prints the spans it made: the tree shown in ``docs/guides/tracing.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .app import create_app

SHOWN = ("eventbus.handler.name", "eventbus.handlers", "eventbus.failed", "http.route")


def render(spans: Sequence[ReadableSpan]) -> str:
    """One line per span, children under their parent in start order, with the
    attributes of ``SHOWN`` and the status when it is an error."""
    children: dict[int | None, list[ReadableSpan]] = {}
    known = {span.context.span_id for span in spans}
    for span in sorted(spans, key=lambda span: span.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in known else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(span: ReadableSpan, prefix: str, last: bool, root: bool) -> None:
        attributes = span.attributes or {}
        shown = [key + "=" + str(attributes[key]) for key in SHOWN if key in attributes]
        if span.status.status_code.name == "ERROR":
            shown.append("status=ERROR")
        branch = "" if root else ("└── " if last else "├── ")
        lines.append(f"{prefix}{branch}{span.name}" + (f"  [{', '.join(shown)}]" if shown else ""))
        below = children.get(span.context.span_id, [])
        inner = prefix if root else prefix + ("    " if last else "│   ")
        for index, child in enumerate(below):
            walk(child, inner, index == len(below) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)


async def traced_requests() -> str:
    """Register a member (``member.created`` is published) then close a till
    session on a traced shop; the rendered traces of those two requests."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(tracer_provider=provider)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        member = await client.post("/members", json={"name": "Ada", "email": "ada@example.com"})
        member_id = member.json()["member_id"]
        await app.state.events.drain()
        response = await client.post(
            "/sessions/7/close", json={"total_cents": 1250, "member_id": member_id}
        )
        response.raise_for_status()
    provider.shutdown()
    return render(exporter.get_finished_spans())


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    print(asyncio.run(traced_requests()))
