"""Shared fixtures: a fresh bus per test and structlog reset around each test."""

from __future__ import annotations

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
def bus() -> EventBus:
    return EventBus("test")
