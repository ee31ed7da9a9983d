"""Shared fixtures: a fresh bus per test and structlog reset around each test."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog

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
