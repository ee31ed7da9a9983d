"""Error messages that say what went wrong, and tracebacks that show where
(issue 12, item 8)."""

from __future__ import annotations

import asyncio
import traceback
from pathlib import Path

import pytest

import eventbus
from eventbus import (
    BusClosedError,
    Event,
    EventBus,
    EventBusError,
    PayloadError,
    ReentrancyError,
    UnknownEventError,
)

PACKAGE = str(Path(eventbus.__file__).parent)


async def _never(event: Event) -> None:
    await asyncio.get_running_loop().create_future()  # cancelled by the timeout


def _eventbus_frames(error: BaseException) -> int:
    frames = traceback.extract_tb(error.__traceback__)
    return sum(1 for frame in frames if frame.filename.startswith(PACKAGE))


class TestTimeout:
    async def test_await_emit_names_handler_and_limit(self) -> None:
        """Under await emit, a timed-out handler's TimeoutError names it and the limit."""
        bus = EventBus("msgs")
        bus.on("sale.closed", _never, timeout=0.01)
        async with asyncio.timeout(60):
            report = await bus.emit("sale.closed")
        error = report.errors[0].error
        assert isinstance(error, TimeoutError)
        assert str(error) == f"handler {__name__}._never timed out after 0.01 s"

    def test_emit_sync_names_handler_and_limit(self) -> None:
        """Under emit_sync (blocking loop), the TimeoutError names the handler and the limit."""
        bus = EventBus("msgs")
        bus.on("sale.closed", _never, timeout=0.01)
        error = bus.emit_sync("sale.closed").errors[0].error
        assert isinstance(error, TimeoutError)
        assert str(error) == f"handler {__name__}._never timed out after 0.01 s"

    async def test_handler_own_timeout_error_kept(self) -> None:
        """A TimeoutError the handler raises itself is reported as it is."""
        bus = EventBus("msgs")

        async def own(event: Event) -> None:
            raise TimeoutError("upstream slow")

        bus.on("sale.closed", own, timeout=30)
        report = await bus.emit("sale.closed")
        assert str(report.errors[0].error) == "upstream slow"


class TestErrorTracebacks:
    @pytest.mark.parametrize(
        "error", [EventBusError, ReentrancyError, UnknownEventError, PayloadError, BusClosedError]
    )
    def test_module_is_eventbus(self, error: type[Exception]) -> None:
        """Every error's __module__ is eventbus."""
        assert error.__module__ == "eventbus"

    async def test_payload_error_one_frame(self) -> None:
        """A PayloadError from emit shows one eventbus frame."""
        bus = EventBus("msgs")
        bus.declare("sale.closed", payload={"total": int})
        with pytest.raises(PayloadError) as caught:
            await bus.emit("sale.closed")
        assert _eventbus_frames(caught.value) == 1

    def test_unknown_event_one_frame(self) -> None:
        """An UnknownEventError from emit_sync shows one eventbus frame and no KeyError context."""
        bus = EventBus("msgs", strict=True)
        with pytest.raises(UnknownEventError) as caught:
            bus.emit_sync("sale.closed")
        assert _eventbus_frames(caught.value) == 1
        assert caught.value.__context__ is None or caught.value.__suppress_context__

    async def test_bus_closed_one_frame(self) -> None:
        """A BusClosedError from publish shows one eventbus frame."""
        bus = EventBus("msgs")
        await bus.aclose()
        with pytest.raises(BusClosedError) as caught:
            bus.publish("sale.closed")
        assert _eventbus_frames(caught.value) == 1

    async def test_reentrancy_error_one_frame(self) -> None:
        """A loop refused in a handler shows two eventbus frames: the dispatch loop's and emit's."""
        bus = EventBus("msgs")

        async def again(event: Event) -> None:
            await bus.emit("sale.closed")

        bus.on("sale.closed", again)
        error = (await bus.emit("sale.closed")).errors[0].error
        assert isinstance(error, ReentrancyError)
        assert _eventbus_frames(error) == 2


class TestMissingPayloadKey:
    def test_key_error_names_key_and_event(self) -> None:
        """event["key"] for a missing key raises KeyError naming the key and the event."""
        event = Event("sale.closed", {"total": 1})
        with pytest.raises(KeyError, match=r"'sale\.closed'.*'email'"):
            event["email"]

    def test_present_key_read(self) -> None:
        """A present key still reads its value."""
        assert Event("sale.closed", {"total": 1})["total"] == 1


class TestPayloadErrorEveryKey:
    def test_names_missing_and_mistyped_keys(self) -> None:
        """PayloadError names every bad key at once, missing and mistyped."""
        bus = EventBus("msgs")
        bus.declare("sale.closed", payload={"sale_id": str, "total": int, "till": str})
        with pytest.raises(PayloadError) as caught:
            bus.emit_sync("sale.closed", total="12", till="T1")
        message = str(caught.value)
        assert "'sale_id' is missing" in message
        assert "'total' expected int, got str" in message
        assert "'till'" not in message


class TestPatterns:
    @pytest.mark.parametrize("pattern", ["sale.*.x", "sa*le", "sale*"])
    def test_misplaced_star(self, pattern: str) -> None:
        """A misplaced * says it may only be a whole last segment."""
        with pytest.raises(ValueError, match=r"'\*' may only be a whole last segment"):
            EventBus("msgs").on(pattern, print)

    def test_strict_unknown_pattern_did_you_mean(self) -> None:
        """An unknown pattern in strict mode gets a did-you-mean."""
        bus = EventBus("msgs", strict=True)
        bus.declare("sale.closed")
        with pytest.raises(UnknownEventError, match=r"did you mean 'sale\.\*'\?"):
            bus.on("sael.*", print)


class TestChainMessage:
    def _refusal(self, names: tuple[str, ...]) -> ReentrancyError:
        bus = EventBus("msgs")
        errors: list[ReentrancyError] = []
        for index, name in enumerate(names):
            bus.declare(name, reentrant=True)
            following = names[(index + 1) % len(names)]

            def emit_next(event: Event, following: str = following) -> None:
                try:
                    bus.emit_sync(following)
                except ReentrancyError as error:
                    errors.append(error)

            bus.on(name, emit_next)
        bus.emit_sync(names[0])
        return errors[0]

    def test_one_name_collapsed(self) -> None:
        """At max_depth a chain of one name shows as a run with its count."""
        error = self._refusal(("a",))
        assert str(error).endswith(": a x18 (18 emissions)")

    def test_cycle_collapsed(self) -> None:
        """At max_depth a two-name cycle shows once with its count."""
        error = self._refusal(("a", "b"))
        assert str(error).endswith(": (a -> b) x9 (18 emissions)")

    def test_chain_attribute_full(self) -> None:
        """.chain stays the full tuple."""
        assert self._refusal(("a",)).chain == ("a",) * 18

    def test_short_loop_shown_whole(self) -> None:
        """A plain loop is still shown whole."""
        errors: list[Exception] = []
        bus = EventBus("msgs", on_error=lambda event, info, error: errors.append(error))
        bus.on("sale.closed", lambda event: bus.emit_sync("ledger.updated"))
        bus.on("ledger.updated", lambda event: bus.emit_sync("sale.closed"))
        bus.emit_sync("sale.closed")
        assert str(errors[0]).endswith(": sale.closed -> ledger.updated -> sale.closed")
