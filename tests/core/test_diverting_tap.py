"""A tap with ``diverts = True``: the local emissions it matches run no handler (they are
handled elsewhere, e.g. from a Redis stream), while ``emit_received`` still runs them."""

from __future__ import annotations

from typing import Any

from eventbus import Event, EventBus


class Diverter:
    """Keeps the emissions it matches; their handlers run only when they come back."""

    diverts = True

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.kept: list[Event] = []

    def matches(self, name: str) -> bool:
        return name.startswith(self.prefix)

    def prepare(self, event: Event, chain: tuple[str, ...]) -> Event:
        return event

    def take(self, prepared: Any) -> None:
        self.kept.append(prepared)


async def test_a_diverted_emission_runs_no_local_handler_and_is_shown_to_the_tap() -> None:
    bus = EventBus("b")
    handled: list[Event] = []
    bus.on("order.placed", handled.append)
    tap = Diverter("order.")
    bus.add_tap(tap)

    report = await bus.emit("order.placed", total=1)

    assert handled == []
    assert report.results == ()
    assert tap.kept == [report.event]


async def test_a_diverted_event_received_from_elsewhere_runs_its_handlers() -> None:
    bus = EventBus("b")
    handled: list[Event] = []
    bus.on("order.placed", handled.append)
    tap = Diverter("order.")
    bus.add_tap(tap)
    made = (await EventBus("elsewhere").emit("order.placed", total=1)).event

    report = await bus.emit_received(made, skip=tap)

    assert handled == [made]
    assert report.ok
    assert tap.kept == []  # skipped: it came through this tap


def test_emissions_the_diverting_tap_does_not_match_run_their_handlers() -> None:
    bus = EventBus("b")
    handled: list[Event] = []
    bus.on("member.created", handled.append)
    bus.add_tap(Diverter("order."))

    report = bus.emit_sync("member.created")

    assert handled == [report.event]


def test_handlers_run_locally_again_once_the_diverting_tap_is_removed() -> None:
    bus = EventBus("b")
    handled: list[Event] = []
    bus.on("order.placed", handled.append)
    tap = Diverter("order.")
    bus.add_tap(tap)
    bus.emit_sync("order.placed")
    bus.remove_tap(tap)

    report = bus.emit_sync("order.placed")

    assert handled == [report.event]
