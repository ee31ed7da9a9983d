"""Regression tests for the subscribing edges of issue 12: handler identity,
names, async detection, signature checks, timeouts, re-entrant table changes,
collected-before-running warnings and the emit_sync refusal."""

from __future__ import annotations

import json
import math

import pytest

from eventbus import Event, EventBus


def _noop(event: Event) -> None:
    pass


class TestInfiniteTimeouts:
    """Item 7: an infinite timeout is refused like nan (it is not JSON)."""

    @pytest.mark.parametrize("value", [math.inf, -math.inf])
    def test_subscription_timeout(self, bus: EventBus, value: float) -> None:
        """on(..., timeout=inf) is a ValueError naming the option."""
        with pytest.raises(ValueError, match="timeout must be a finite"):
            bus.on("a", _noop, timeout=value)

    def test_bus_handler_timeout(self) -> None:
        """EventBus(handler_timeout=inf) is a ValueError naming the option."""
        with pytest.raises(ValueError, match="handler_timeout must be a finite"):
            EventBus(handler_timeout=math.inf)

    def test_describe_stays_json(self, bus: EventBus) -> None:
        """Accepted timeouts keep describe() strict JSON."""
        bus.on("a", _noop, timeout=1e9)
        json.dumps(bus.describe(), allow_nan=False)
