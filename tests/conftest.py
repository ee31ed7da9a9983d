"""Shared fixtures: a fresh bus per test, structlog reset around each test, and ``emit``,
which runs a test under each way of emitting (see emitters.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog
from emitters import EMIT_MODES, Emitter

from eventbus import EventBus


def _drop(*_: object) -> None:
    raise structlog.DropEvent


@pytest.fixture(autouse=True)
def quiet_structlog() -> Iterator[None]:
    """Each test starts from structlog's defaults, with output dropped (tests
    that look at logs use ``structlog.testing.capture_logs``)."""
    structlog.reset_defaults()
    structlog.configure(processors=[_drop])
    yield
    structlog.reset_defaults()


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    """Make the interpreter switch threads far more often, to expose races."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.fixture
def bus() -> EventBus:
    return EventBus("test")


@pytest.fixture(params=EMIT_MODES)
def emit(request: pytest.FixtureRequest) -> Emitter:
    """Each way of emitting in turn: ``report = await emit(bus, name, **payload)``; narrow it
    with ``@pytest.mark.parametrize("emit", [...], indirect=True)``."""
    return Emitter(request.param)
