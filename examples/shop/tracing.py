"""Traces and metrics for the shop: each HTTP request is a span (from
``opentelemetry-instrumentation-fastapi``), the root of the emissions it
causes and of their handlers' spans (from ``eventbus.otel``).

``create_app(tracer_provider=..., meter_provider=...)`` calls ``instrument``;
``SHOP_TRACING=1`` does it for ``uvicorn examples.shop.app:app`` with the
global providers (configure them as usual, e.g. with ``opentelemetry-instrument``).
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from eventbus import EventBus
from eventbus.otel import instrument as instrument_bus


def instrument(
    app: FastAPI,
    bus: EventBus,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace the application's requests and the bus's emissions with the same providers."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        exclude_spans=["receive", "send"],  # one span per request, not per ASGI message
    )
    instrument_bus(bus, tracer_provider=tracer_provider, meter_provider=meter_provider)
