"""Closing and reopening a bus: ``aclose`` from handlers and the tasks they
start, ``reopen``, ``async with`` on a closed bus (issue 12, item 6); and the
``Event`` constructor's payload keys and its JSON rendering (item 7)."""

from __future__ import annotations

import asyncio
import json

import pytest
import structlog

from eventbus import BusClosedError, Event, EventBus

HANG_GUARD = 60.0  # seconds; only reached when something hangs, which is a failure


class TestACloseFromHandlerTasks:
    async def test_task_after_emission_closes(self, bus: EventBus) -> None:
        """aclose from a task a handler started closes once that emission finished."""
        go = asyncio.Event()
        spawned: list[asyncio.Task[None]] = []

        async def closer() -> None:
            await go.wait()
            await bus.aclose()

        bus.on("x", lambda event: spawned.append(asyncio.create_task(closer())))
        await bus.emit("x")
        go.set()
        await asyncio.wait_for(spawned[0], HANG_GUARD)

        assert bus.closed is True

    async def test_task_emits_while_closing_refused(self, bus: EventBus) -> None:
        """A task whose originating emission finished emits as a top-level one: refused."""
        go = asyncio.Event()
        started = asyncio.Event()
        release = asyncio.Event()
        outcome: list[BaseException] = []
        spawned: list[asyncio.Task[None]] = []

        async def late() -> None:
            await go.wait()
            try:
                await bus.emit("late")
            except BusClosedError as error:
                outcome.append(error)

        async def slow(event: Event) -> None:
            started.set()
            await release.wait()

        bus.on("x", lambda event: spawned.append(asyncio.create_task(late())))
        bus.on("slow", slow)
        await bus.emit("x")
        emitting = asyncio.create_task(bus.emit("slow"))
        await started.wait()
        closing = asyncio.create_task(bus.aclose())
        await asyncio.sleep(0)  # let aclose start: closing, still waiting for "slow"
        go.set()
        await asyncio.wait_for(spawned[0], HANG_GUARD)
        release.set()
        await asyncio.wait_for(asyncio.gather(emitting, closing), HANG_GUARD)

        assert len(outcome) == 1

    async def test_task_during_emission_refused(self, bus: EventBus) -> None:
        """aclose from a task a handler started, while that emission runs, is a RuntimeError."""
        tried = asyncio.Event()
        outcome: list[BaseException] = []

        async def closer() -> None:
            try:
                await bus.aclose()
            except RuntimeError as error:
                outcome.append(error)
            finally:
                tried.set()

        async def handler(event: Event) -> None:
            asyncio.create_task(closer())  # noqa: RUF006 - awaited through `tried`
            await tried.wait()

        bus.on("x", handler)
        await asyncio.wait_for(bus.emit("x"), HANG_GUARD)

        assert len(outcome) == 1
        assert bus.closed is False


class TestACloseInsideEmission:
    async def test_in_awaited_code(self, bus: EventBus) -> None:
        """aclose in a task the running handler awaits is a RuntimeError."""

        async def closes() -> None:
            await bus.aclose()

        async def handler(event: Event) -> None:
            await asyncio.create_task(closes())

        bus.on("x", handler)
        report = await asyncio.wait_for(bus.emit("x"), HANG_GUARD)

        assert isinstance(report.errors[0].error, RuntimeError)
        assert "still running" in str(report.errors[0].error)
        assert bus.closed is False


class TestReopen:
    async def test_emits_again(self, bus: EventBus) -> None:
        """A reopened bus accepts emissions, its subscriptions intact."""
        bus.on("x", lambda event: "ran")
        await bus.aclose()

        bus.reopen()

        assert bus.closed is False
        assert (await bus.emit("x")).values == ("ran",)

    def test_sync_after_reopen(self, bus: EventBus) -> None:
        """A reopened bus accepts emit_sync again."""
        bus.on("x", lambda event: "ran")
        asyncio.run(bus.aclose())

        bus.reopen()

        assert bus.emit_sync("x").values == ("ran",)

    async def test_open_is_harmless(self, bus: EventBus) -> None:
        """reopen on an open bus changes nothing."""
        bus.on("x", lambda event: "ran")

        bus.reopen()

        assert bus.closed is False
        assert (await bus.emit("x")).values == ("ran",)

    async def test_closes_again(self, bus: EventBus) -> None:
        """A reopened bus can be closed again."""
        await bus.aclose()
        bus.reopen()

        await bus.aclose()

        with pytest.raises(BusClosedError):
            await bus.emit("x")

    async def test_while_closing_refused(self, bus: EventBus) -> None:
        """reopen while aclose still waits for an emission is a RuntimeError."""
        gate = asyncio.Event()
        started = asyncio.Event()

        async def blocked(event: Event) -> None:
            started.set()
            await gate.wait()

        bus.on("x", blocked)
        emitting = asyncio.create_task(bus.emit("x"))
        await started.wait()
        closing = asyncio.create_task(bus.aclose())
        await asyncio.sleep(0)  # let aclose start

        with pytest.raises(RuntimeError, match="under way"):
            bus.reopen()
        gate.set()
        await asyncio.wait_for(asyncio.gather(emitting, closing), HANG_GUARD)
        assert bus.closed is True


class TestAsyncWith:
    async def test_reopens_closed_bus(self, bus: EventBus) -> None:
        """``async with`` on a closed bus reopens it, subscriptions intact."""
        bus.on("x", lambda event: "ran")
        await bus.aclose()

        async with bus:
            assert bus.closed is False
            report = await bus.emit("x")

        assert report.values == ("ran",)
        assert bus.closed is True

    async def test_binds_running_loop(self, bus: EventBus) -> None:
        """``async with`` binds the bus: emit_sync from a thread runs async handlers there."""
        loops: list[asyncio.AbstractEventLoop] = []

        async def handler(event: Event) -> None:
            loops.append(asyncio.get_running_loop())

        bus.on("x", handler)
        async with bus:
            await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), HANG_GUARD)

        assert loops == [asyncio.get_running_loop()]


class TestEventPayloadKeys:
    def test_int_key_refused(self) -> None:
        """A payload key that is not a str is a TypeError naming it."""
        with pytest.raises(TypeError, match=r"payload keys must be str; not: 1 \(int\)"):
            Event("a", {1: "x"})

    def test_every_bad_key_named(self) -> None:
        """Every bad key is named at once."""
        with pytest.raises(TypeError, match=r"1 \(int\), None \(NoneType\)"):
            Event("a", {1: "x", "ok": 2, None: 3})


class TestEventJson:
    def test_json_dumps_keys_and_ids(self) -> None:
        """json.dumps(default=str) renders an Event with its keys and id."""
        event = Event("a.b", {"card": "4970-secret"})

        shown = json.dumps({"event": event}, default=str)

        assert "card" in shown
        assert event.id in shown

    def test_json_dumps_no_value(self) -> None:
        """json.dumps(default=str) never shows a payload value."""
        shown = json.dumps({"event": Event("a.b", {"card": "4970-secret"})}, default=str)

        assert "4970-secret" not in shown

    def test_structlog_json_renderer(self) -> None:
        """structlog's JSONRenderer renders an Event without its payload values."""
        event = Event("a.b", {"card": "4970-secret"})
        render = structlog.processors.JSONRenderer()

        shown = render(None, "info", {"event": "x", "emitted": event})

        assert isinstance(shown, str)
        assert event.id in shown
        assert "4970-secret" not in shown
