"""OpenTelemetry traces and metrics for a bus: ``instrument(bus)``.

Needs the ``otel`` extra (``opentelemetry-api``; an SDK to export anything).
Built on the public ``Interceptor`` seam and nothing private:

* each emission is a span ``emit <name>`` (attributes ``eventbus.bus``,
  ``eventbus.event.name``, ``.id``, ``.parent_id``, ``.depth``,
  ``eventbus.source``, ``eventbus.handlers``, ``eventbus.failed``), the child
  of the span current where it was emitted: a handler's span for a nested
  emission, the publisher's for ``publish``, the emitting process's emission
  span for an event received through a bridge (W3C trace context);
* each handler run is a child span ``handle <name>`` (``eventbus.handler.name``),
  status ERROR with the exception recorded when it fails;
* counter ``eventbus.emissions`` (``eventbus.event.name``, ``eventbus.outcome``)
  and histogram ``eventbus.handler.duration`` in seconds
  (``eventbus.handler.name``, ``eventbus.outcome``).

No payload value is ever put on a span or a metric; attributes that would be
None (a top-level event's parent id, no source) are left out.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Generator, Mapping
from contextvars import Token
from time import perf_counter
from typing import Final, final

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "eventbus.otel needs opentelemetry-api; install the extra: pip install 'eventbus[otel]'",
        name=_missing.name,
    ) from _missing

import eventbus
from eventbus import EmitReport, Event, EventBus, HandlerInfo, Interceptor

__all__ = ["instrument", "uninstrument"]

_SCOPE: Final = "eventbus"
_MAX_EARLY: Final = 1024
"""Emission spans started for a bridge but not yet dispatched, kept at most."""

_propagator: Final = TraceContextTextMapPropagator()
_instrumented: Final[weakref.WeakKeyDictionary[EventBus, _Telemetry]] = weakref.WeakKeyDictionary()
_lock: Final = threading.Lock()


def instrument(
    bus: EventBus,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Trace and measure every emission of ``bus`` from now on, with the given
    providers (default: the global ones). Instrumenting an instrumented bus
    again is harmless: it keeps its first providers."""
    if not isinstance(bus, EventBus):
        raise TypeError(f"instrument() needs an EventBus, not {type(bus).__name__}")
    with _lock:
        if bus in _instrumented:
            return
        telemetry = _Telemetry(tracer_provider, meter_provider)
        _instrumented[bus] = telemetry
        bus.add_interceptor(telemetry)


def uninstrument(bus: EventBus) -> None:
    """Stop tracing and measuring ``bus`` (harmless if it is not instrumented)."""
    if not isinstance(bus, EventBus):
        raise TypeError(f"uninstrument() needs an EventBus, not {type(bus).__name__}")
    with _lock:
        telemetry = _instrumented.pop(bus, None)
        if telemetry is not None:
            bus.remove_interceptor(telemetry)


def _event_attributes(event: Event) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "eventbus.event.name": event.name,
        "eventbus.event.id": event.id,
        "eventbus.event.depth": event.depth,
    }
    if event.parent_id is not None:
        attributes["eventbus.event.parent_id"] = event.parent_id
    if event.source is not None:
        attributes["eventbus.source"] = event.source
    return attributes


def _attach(span: trace.Span) -> Token[otel_context.Context] | None:
    """Make ``span`` the current one (for the handlers and the emissions they
    make); not a no-op tracer's invalid span, which would hide a valid parent."""
    if not span.get_span_context().is_valid:
        return None
    return otel_context.attach(trace.set_span_in_context(span))


def _failed(span: trace.Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__qualname__))


@final
class _Telemetry(Interceptor):
    """The interceptor ``instrument`` adds: spans around emissions and handler
    runs, the trace context for bridges, the two metrics."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        version = eventbus.__version__
        self._tracer: Final = trace.get_tracer(_SCOPE, version, tracer_provider)
        meter = metrics.get_meter(_SCOPE, version, meter_provider)
        self._emissions: Final = meter.create_counter(
            "eventbus.emissions", unit="{emission}", description="Emissions, by outcome."
        )
        self._duration: Final = meter.create_histogram(
            "eventbus.handler.duration", unit="s", description="Handler run time, by outcome."
        )
        self._early: Final[dict[str, trace.Span]] = {}
        self._early_lock: Final = threading.Lock()

    def outgoing(self, event: Event) -> Mapping[str, str]:
        """The W3C trace context of the emission's span, started now: a bridge
        asks before the bus dispatches the event (its taps run first)."""
        span = self._tracer.start_span(f"emit {event.name}", attributes=_event_attributes(event))
        with self._early_lock:
            if len(self._early) >= _MAX_EARLY:  # emissions refused after a bridge saw them
                del self._early[next(iter(self._early))]
            self._early[event.id] = span
        headers: dict[str, str] = {}
        _propagator.inject(headers, trace.set_span_in_context(span))
        return headers

    def emission(
        self, bus: EventBus, event: Event, headers: Mapping[str, str]
    ) -> Generator[None, EmitReport, None]:
        with self._early_lock:
            span = self._early.pop(event.id, None) if self._early else None
        if span is None:
            parent = _propagator.extract(headers) if headers else None
            span = self._tracer.start_span(
                f"emit {event.name}", parent, attributes=_event_attributes(event)
            )
        recording = span.is_recording()
        if recording:
            span.set_attribute("eventbus.bus", bus.name)
        token = _attach(span)
        outcome = "failed"
        try:
            report = yield
            failed = report.failed
            if recording:
                span.set_attribute("eventbus.handlers", len(report.results))
                span.set_attribute("eventbus.failed", failed)
            if not failed:
                outcome = "ok"
        except BaseException as error:
            _failed(span, error)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            span.end()
            self._emissions.add(1, {"eventbus.event.name": event.name, "eventbus.outcome": outcome})

    def handler(self, event: Event, info: HandlerInfo) -> Generator[None, Exception | None, None]:
        span = self._tracer.start_span(
            f"handle {event.name}", attributes={"eventbus.handler.name": info.name}
        )
        token = _attach(span)
        outcome = "failed"
        start = perf_counter()
        try:
            error = yield
            if error is None:
                outcome = "ok"
            else:
                _failed(span, error)
        except BaseException as error:
            _failed(span, error)
            raise
        finally:
            elapsed = perf_counter() - start
            if token is not None:
                otel_context.detach(token)
            span.end()
            self._duration.record(
                elapsed, {"eventbus.handler.name": info.name, "eventbus.outcome": outcome}
            )
