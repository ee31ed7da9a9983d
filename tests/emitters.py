"""``Emitter``: emit on a bus one way or another, for tests run under each way."""

from __future__ import annotations

import asyncio
from typing import Any

from eventbus import EmitReport, EventBus

EMIT_MODES = ("emit", "emit_sync", "publish")
HANG_GUARD = 60  # seconds; a safety net against a hang, never a measure


class Emitter:
    """Emit on a bus one way and return the report: ``await emit(bus, name, **payload)``
    (or ``await emit(bus, topic, data)``).

    - ``emit``: ``await bus.emit(...)``;
    - ``emit_sync``: ``bus.emit_sync(...)`` run off the loop in a worker thread (inside
      the running loop ``emit_sync`` refuses async handlers); whatever it raises,
      ``BaseException`` included, is raised again here, as ``await bus.emit`` would;
    - ``publish``: ``bus.publish(...)`` awaited to its report.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __repr__(self) -> str:
        return f"Emitter({self.mode!r})"

    async def __call__(self, bus: EventBus, name: Any, /, *data: Any, **kwargs: Any) -> EmitReport:
        """``data``: a topic's data (or anything, to test that it is refused)."""
        if self.mode == "emit":
            return await bus.emit(name, *data, **kwargs)
        if self.mode == "publish":
            return await bus.publish(name, *data, **kwargs)

        def off_loop() -> tuple[EmitReport | None, BaseException | None]:
            try:
                return bus.emit_sync(name, *data, **kwargs), None
            except BaseException as error:  # handed back to the awaiting test
                return None, error

        report, error = await asyncio.wait_for(asyncio.to_thread(off_loop), HANG_GUARD)
        if error is not None:
            raise error
        assert report is not None
        return report
