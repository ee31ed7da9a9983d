"""Taps with ``confirms = True``: ``take`` may return a future (a confirmation) that the
emission waits for before any handler runs; its exception is the emitter's."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest
from emitters import Emitter

from eventbus import Event, EventBus

HANG_GUARD = 60.0


class ConfirmingTap:
    """Hands every emission a future that the test completes (``confirm``/``refuse``)."""

    confirms = True

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.futures: list[asyncio.Future[Any] | concurrent.futures.Future[Any]] = []
        self.taken = threading.Event()

    def __repr__(self) -> str:
        return "<ConfirmingTap>"

    def matches(self, name: str) -> bool:
        return name.startswith("order.")

    def prepare(self, event: Event, chain: tuple[str, ...]) -> str:
        return event.name

    def take(self, prepared: Any) -> asyncio.Future[Any] | concurrent.futures.Future[Any]:
        future: asyncio.Future[Any] | concurrent.futures.Future[Any]
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        future = self.loop.create_future() if running is self.loop else concurrent.futures.Future()
        self.futures.append(future)
        self.loop.call_soon_threadsafe(self.taken.set)
        return future

    async def next_future(self) -> asyncio.Future[Any] | concurrent.futures.Future[Any]:
        """The future of the next emission taken."""
        while not self.futures:
            self.taken.clear()
            await asyncio.wait_for(asyncio.to_thread(self.taken.wait, HANG_GUARD), HANG_GUARD)
        return self.futures.pop(0)


def complete(
    future: asyncio.Future[Any] | concurrent.futures.Future[Any], error: Any = None
) -> None:
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


@pytest.fixture
async def tap() -> ConfirmingTap:
    return ConfirmingTap(asyncio.get_running_loop())


async def test_handlers_run_only_once_the_confirmation_is_done(
    emit: Emitter, tap: ConfirmingTap
) -> None:
    bus = EventBus("shop")
    ran: list[str] = []
    bus.on("order.placed", lambda event: ran.append(event.name))
    bus.add_tap(tap)

    emission = asyncio.ensure_future(emit(bus, "order.placed", total=3))
    future = await tap.next_future()
    assert ran == []
    assert not emission.done()

    complete(future)
    report = await asyncio.wait_for(emission, HANG_GUARD)

    assert report.ok
    assert ran == ["order.placed"]


async def test_a_failed_confirmation_is_raised_to_the_emitter_and_no_handler_runs(
    emit: Emitter, tap: ConfirmingTap
) -> None:
    bus = EventBus("shop")
    ran: list[str] = []
    bus.on("order.placed", lambda event: ran.append(event.name))
    bus.add_tap(tap)

    emission = asyncio.ensure_future(emit(bus, "order.placed", total=3))
    complete(await tap.next_future(), ConnectionError("not sent"))

    with pytest.raises(ConnectionError, match="not sent"):
        await asyncio.wait_for(emission, HANG_GUARD)
    assert ran == []


async def test_emit_sync_inside_a_running_loop_is_refused_before_any_tap_takes(
    tap: ConfirmingTap,
) -> None:
    bus = EventBus("shop")
    bus.add_tap(tap)

    with pytest.raises(RuntimeError, match=r"cannot wait for the confirmation of <ConfirmingTap>"):
        bus.emit_sync("order.placed")
    assert tap.futures == []


async def test_a_received_event_waits_for_the_confirmation_too(tap: ConfirmingTap) -> None:
    bus = EventBus("shop")
    ran: list[str] = []
    bus.on("order.placed", lambda event: ran.append(event.id))
    made = (await EventBus("other").emit("order.placed")).event
    bus.add_tap(tap)

    received = asyncio.ensure_future(bus.emit_received(made))
    future = await tap.next_future()
    assert ran == []
    complete(future)
    await asyncio.wait_for(received, HANG_GUARD)

    assert ran == [made.id]


async def test_emissions_of_routes_without_a_confirming_tap_do_not_wait(tap: ConfirmingTap) -> None:
    bus = EventBus("shop")
    bus.add_tap(tap)

    report = await bus.emit("member.created")
    bus.emit_sync("member.created")  # not matched by the tap: allowed inside the loop

    assert report.ok
    assert tap.futures == []


async def test_what_a_tap_without_confirms_returns_from_take_is_ignored() -> None:
    class Returning:
        def matches(self, name: str) -> bool:
            return True

        def prepare(self, event: Event, chain: tuple[str, ...]) -> None:
            return None

        def take(self, prepared: Any) -> asyncio.Future[None]:
            return asyncio.get_running_loop().create_future()  # never done

    bus = EventBus("shop")
    bus.add_tap(Returning())

    report = await asyncio.wait_for(bus.emit("order.placed"), HANG_GUARD)

    assert report.ok
