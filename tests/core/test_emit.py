"""What only ``await bus.emit`` does: interleaving with other tasks, cancellation, BaseExceptions.

What every way of emitting does is in test_emission.py.
"""

from __future__ import annotations

import asyncio

import pytest

from eventbus import Event, EventBus


async def test_interleaves_at_yield(bus: EventBus) -> None:
    """While an async handler yields, other tasks run; the next handler does not start early."""
    log: list[str] = []

    async def slow(event: Event) -> None:
        log.append("slow:start")
        await asyncio.sleep(0)
        log.append("slow:end")

    def after(event: Event) -> None:
        log.append("after")

    async def bystander() -> None:
        log.append("bystander")

    bus.on("x", slow)
    bus.on("x", after)

    await asyncio.gather(bus.emit("x"), bystander())

    assert log == ["slow:start", "bystander", "slow:end", "after"]


async def test_duration_covers_the_await(bus: EventBus) -> None:
    """A HandlerResult's duration covers the awaited handler."""

    async def hangs(event: Event) -> None:
        await asyncio.Event().wait()

    bus.on("x", hangs, timeout=0.02)

    report = await bus.emit("x")

    assert report.results[0].duration >= 0.015


class TestBaseExceptions:
    async def test_cancelled_error(self, bus: EventBus) -> None:
        """A CancelledError raised in a handler propagates out of emit."""
        log: list[str] = []

        def cancels(event: Event) -> None:
            raise asyncio.CancelledError("from handler")

        bus.on("x", cancels)
        bus.on("x", lambda e: log.append("later"))

        with pytest.raises(asyncio.CancelledError, match="from handler"):
            await bus.emit("x")

        assert log == []

    async def test_async_keyboard_interrupt(self, bus: EventBus) -> None:
        """KeyboardInterrupt in an async handler propagates."""
        log: list[str] = []

        async def interrupts(event: Event) -> None:
            await asyncio.sleep(0)
            raise KeyboardInterrupt("async stop")

        bus.on("x", interrupts)
        bus.on("x", lambda e: log.append("later"))

        with pytest.raises(KeyboardInterrupt, match="async stop"):
            await bus.emit("x")

        assert log == []

    async def test_cancel_the_emitter(self, bus: EventBus) -> None:
        """Cancelling the emitting task cancels the running handler."""
        started = asyncio.Event()
        saw_cancel: list[bool] = []
        log: list[str] = []

        async def hangs(event: Event) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                saw_cancel.append(True)
                raise

        bus.on("x", hangs)
        bus.on("x", lambda e: log.append("later"))

        task = asyncio.create_task(bus.emit("x"))
        await started.wait()
        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await task

        assert task.cancelled()
        assert saw_cancel == [True]
        assert log == []
