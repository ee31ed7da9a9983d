"""The pytest plugin (eventbus.pytest_plugin) and the assertions of eventbus.testing.

Fixtures are tested by running pytest on small test files (pytester), with the
plugin given by ``-p`` so that these tests do not need the ``pytest11`` entry
point to be installed (and still pass when it is). The assertion messages are
tested directly.
"""

from __future__ import annotations

import textwrap
from unittest import mock

import pytest

from eventbus import EventBus
from eventbus.testing import Emissions, recording

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(textwrap.dedent(source))
    return pytester.runpytest(
        "-p",
        "eventbus.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",  # its summary hook costs a second per run
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        *args,
    )


# ------------------------------------------------------------------ fixtures


class TestFixtures:
    def test_fixtures_take_topics(self, pytester: pytest.Pytester) -> None:
        """record_emissions and emissions record and assert through a Topic."""
        result = run(
            pytester,
            """
            from dataclasses import dataclass

            import pytest
            from eventbus import EventBus, Topic

            @dataclass(frozen=True)
            class SaleClosed:
                session_id: int

            SALE_CLOSED = Topic("sale.closed", SaleClosed)

            @pytest.fixture
            def bus():
                return EventBus("shop")

            def test_close(bus, emissions, record_emissions):
                only_sales = record_emissions(bus, SALE_CLOSED)
                bus.emit_sync(SALE_CLOSED, SaleClosed(1))
                bus.emit_sync("ledger.updated")
                assert emissions.assert_emitted(SALE_CLOSED, session_id=1).data == SaleClosed(1)
                assert only_sales.names == ["sale.closed"]
                only_sales.assert_emitted_once(SALE_CLOSED)
            """,
        )
        result.assert_outcomes(passed=1)

    def test_emissions_fixture(self, pytester: pytest.Pytester) -> None:
        """The emissions fixture records the bus of the bus fixture."""
        result = run(
            pytester,
            """
            import pytest
            from eventbus import EventBus

            @pytest.fixture
            def bus():
                return EventBus("shop")

            def test_close(bus, emissions):
                bus.emit_sync("sale.closed", session_id=1)
                emissions.assert_emitted("sale.closed", session_id=1)
                assert emissions.bus is bus
            """,
        )
        result.assert_outcomes(passed=1)

    def test_record_given_bus(self, pytester: pytest.Pytester) -> None:
        """Record emissions records the given bus."""
        result = run(
            pytester,
            """
            from eventbus import EventBus

            def test_two_buses(record_emissions):
                shop, audit = EventBus("shop"), EventBus("audit")
                emitted = record_emissions(shop)
                shop.emit_sync("sale.closed", session_id=1)
                audit.emit_sync("audit.logged")
                assert emitted.names == ["sale.closed"]
            """,
        )
        result.assert_outcomes(passed=1)

    def test_record_given_pattern(self, pytester: pytest.Pytester) -> None:
        """Record emissions records only the given pattern."""
        result = run(
            pytester,
            """
            from eventbus import EventBus

            def test_pattern(record_emissions):
                bus = EventBus("shop")
                emitted = record_emissions(bus, "ledger.*")
                bus.emit_sync("sale.closed")
                bus.emit_sync("ledger.updated")
                assert emitted.names == ["ledger.updated"]
            """,
        )
        result.assert_outcomes(passed=1)

    def test_recording_ends_with_test(self, pytester: pytest.Pytester) -> None:
        """Recording stops when the test ends."""
        result = run(
            pytester,
            """
            from eventbus import EventBus

            BUS = EventBus("shared")
            KEPT = []

            def test_first(record_emissions):
                KEPT.append(record_emissions(BUS))
                BUS.emit_sync("during.first")

            def test_second():
                BUS.emit_sync("during.second")
                assert KEPT[0].names == ["during.first"]
            """,
        )
        result.assert_outcomes(passed=2)

    def test_async_test_publish(self, pytester: pytest.Pytester) -> None:
        """emissions records published emissions of an async test."""
        result = run(
            pytester,
            """
            import pytest
            from eventbus import EventBus

            @pytest.fixture
            def bus():
                return EventBus("shop")

            @pytest.mark.asyncio
            async def test_publish(bus, emissions):
                bus.publish("member.created", member_id=7)
                await bus.drain()
                emissions.assert_emitted_once("member.created", member_id=7)
            """,
        )
        result.assert_outcomes(passed=1)

    def test_async_bus_fixture(self, pytester: pytest.Pytester) -> None:
        """emissions records the bus of an async bus fixture."""
        result = run(
            pytester,
            """
            import pytest
            from eventbus import EventBus

            @pytest.fixture
            async def bus():
                async with EventBus("shop") as bus:
                    yield bus

            async def test_close(bus, emissions):
                await bus.emit("sale.closed", session_id=1)
                emissions.assert_emitted("sale.closed", session_id=1)
            """,
            "-o",
            "asyncio_mode=auto",
        )
        result.assert_outcomes(passed=1)

    def test_failure_in_report(self, pytester: pytest.Pytester) -> None:
        """A failed assertion shows in the test report."""
        result = run(
            pytester,
            """
            import pytest
            from eventbus import EventBus

            @pytest.fixture
            def bus():
                return EventBus("shop")

            def test_close(bus, emissions):
                bus.emit_sync("sale.closed", session_id=2, total_cents=500)
                emissions.assert_emitted("sale.closed", session_id=1)
            """,
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "E * AssertionError: expected an emission of 'sale.closed' with session_id=1 "
                "on bus 'shop', but there was none.",
                "E * Emitted (1):",
                "E * #1 sale.closed {'session_id': 2, 'total_cents': 500}  <- session_id=2, not 1",
            ]
        )

    def test_failure_hides_plugin(self, pytester: pytest.Pytester) -> None:
        """A failed assertion hides the plugin frames."""
        result = run(
            pytester,
            """
            from eventbus import EventBus

            def test_nothing(record_emissions):
                record_emissions(EventBus("shop")).assert_emitted("sale.closed")
            """,
        )
        result.assert_outcomes(failed=1)
        result.stdout.no_fnmatch_line("*eventbus/testing.py*")

    def test_no_bus_fixture(self, pytester: pytest.Pytester) -> None:
        """emissions without a bus fixture says how to fix it."""
        result = run(
            pytester,
            """
            def test_close(emissions):
                pass
            """,
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*the `emissions` fixture records the EventBus of a fixture named 'bus', and there "
                "is none: define it (or set the `eventbus_bus_fixture` ini option), or use "
                "`record_emissions(bus)` instead*",
            ]
        )

    def test_bus_fixture_not_a_bus(self, pytester: pytest.Pytester) -> None:
        """emissions refuses a bus fixture that is not a bus."""
        result = run(
            pytester,
            """
            import pytest

            @pytest.fixture
            def bus():
                return "not a bus"

            def test_close(emissions):
                pass
            """,
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*fixture 'bus', but that fixture is a str: 'not a bus'*"])

    def test_bus_fixture_ini_option(self, pytester: pytest.Pytester) -> None:
        """The bus fixture's name is set by an ini option."""
        pytester.makeini("[pytest]\neventbus_bus_fixture = events\n")
        result = run(
            pytester,
            """
            import pytest
            from eventbus import EventBus

            @pytest.fixture
            def events():
                return EventBus("shop")

            def test_close(events, emissions):
                events.emit_sync("sale.closed")
                emissions.assert_emitted("sale.closed")
            """,
        )
        result.assert_outcomes(passed=1)


# ------------------------------------------------------------------ assertions


@pytest.fixture
def emitted(bus: EventBus) -> Emissions:
    with recording(bus) as emissions:
        bus.emit_sync("sale.closed", source="till", session_id=2, total_cents=500)
        bus.emit_sync("ledger.updated", reference="session-2", entries=2)
        bus.emit_sync("sale.closed", session_id=3, total_cents=700)
    return emissions


class TestAssertions:
    def test_emitted_first_match(self, emitted: Emissions) -> None:
        """assert_emitted returns the first matching event."""
        event = emitted.assert_emitted("sale.closed", total_cents=500)
        assert (event.name, event["session_id"], event.source) == ("sale.closed", 2, "till")

    def test_emitted_pattern(self, emitted: Emissions) -> None:
        """assert_emitted accepts a pattern."""
        assert emitted.assert_emitted("ledger.*").name == "ledger.updated"

    def test_emitted_explains(self, emitted: Emissions) -> None:
        """assert_emitted lists what was emitted instead and why it differs."""
        with pytest.raises(AssertionError) as failure:
            emitted.assert_emitted("sale.closed", session_id=1, cashier="Ada")
        assert str(failure.value) == (
            "expected an emission of 'sale.closed' with session_id=1, cashier='Ada' "
            "on bus 'test', but there was none.\n"
            "Emitted (3):\n"
            "  #1 sale.closed {'session_id': 2, 'total_cents': 500} source='till'"
            "  <- session_id=2, not 1; no 'cashier'\n"
            "  #2 ledger.updated {'reference': 'session-2', 'entries': 2}\n"
            "  #3 sale.closed {'session_id': 3, 'total_cents': 700}"
            "  <- session_id=3, not 1; no 'cashier'"
        )

    def test_emitted_empty(self, bus: EventBus) -> None:
        """assert_emitted on an empty recording says nothing was emitted."""
        with recording(bus, "sale.*") as emitted:
            pass
        with pytest.raises(
            AssertionError, match=r"but there was none\.\nNothing matching 'sale\.\*'"
        ):
            emitted.assert_emitted("sale.closed")

    def test_emitted_indents_nested(self, bus: EventBus) -> None:
        """assert_emitted indents nested emissions under their parent."""
        bus.on("sale.closed", lambda event: bus.emit_sync("ledger.updated"))
        with recording(bus) as emitted:
            bus.emit_sync("sale.closed")
        with pytest.raises(
            AssertionError, match=r"#1 sale\.closed \{\}\n  #2   ledger\.updated \{\}"
        ):
            emitted.assert_emitted("stock.counted")

    def test_emitted_lists_fifty(self, bus: EventBus) -> None:
        """assert_emitted lists at most fifty emissions."""
        with recording(bus) as emitted:
            for number in range(60):
                bus.emit_sync("tick", number=number)
        with pytest.raises(
            AssertionError, match=r"#50 tick \{'number': 49\}\n  \.\.\. and 10 more$"
        ):
            emitted.assert_emitted("tock")

    def test_emitted_once_twice(self, emitted: Emissions) -> None:
        """assert_emitted_once fails on two matching emissions."""
        with pytest.raises(
            AssertionError,
            match=r"expected exactly one emission of 'sale.closed' on bus 'test', but there were 2",
        ):
            emitted.assert_emitted_once("sale.closed")

    def test_emitted_once_match(self, emitted: Emissions) -> None:
        """assert_emitted_once returns the single match."""
        assert emitted.assert_emitted_once("sale.closed", session_id=3)["total_cents"] == 700

    def test_not_emitted_passes(self, emitted: Emissions) -> None:
        """assert_not_emitted passes when only other payloads were emitted."""
        emitted.assert_not_emitted("sale.closed", session_id=1)

    def test_not_emitted_names(self, emitted: Emissions) -> None:
        """assert_not_emitted names the offending emissions."""
        with pytest.raises(
            AssertionError,
            match=r"expected no emission of 'sale\.closed' on bus 'test', but found 2 \(#1, #3\)",
        ):
            emitted.assert_not_emitted("sale.closed")

    def test_in_order_gaps(self, emitted: Emissions) -> None:
        """assert_emitted_in_order allows other emissions in between."""
        first, last = emitted.assert_emitted_in_order(
            [
                ("sale.closed", {"session_id": 2}),
                ("sale.closed", {"session_id": 3}),
            ]
        )
        assert (first["session_id"], last["session_id"]) == (2, 3)

    def test_in_order_missing_step(self, emitted: Emissions) -> None:
        """assert_emitted_in_order shows the missing step."""
        with pytest.raises(AssertionError) as failure:
            emitted.assert_emitted_in_order(["ledger.updated", "sale.closed", "ledger.updated"])
        assert str(failure.value).startswith(
            "expected emissions in this order on bus 'test':\n"
            "  1. 'ledger.updated': found (#2)\n"
            "  2. 'sale.closed': found (#3)\n"
            "  3. 'ledger.updated': MISSING after #3\n"
            "Emitted (3):\n"
        )

    def test_in_order_single_string(self, emitted: Emissions) -> None:
        """assert_emitted_in_order refuses a single string."""
        with pytest.raises(TypeError, match=r"not one str: write \['sale\.closed'\]"):
            emitted.assert_emitted_in_order("sale.closed")  # type: ignore[arg-type]

    def test_in_order_malformed(self, emitted: Emissions) -> None:
        """assert_emitted_in_order refuses a malformed step."""
        with pytest.raises(TypeError, match=r"a name or a \(name, \{key: value\}\) pair, not 42"):
            emitted.assert_emitted_in_order(["sale.closed", 42])  # type: ignore[list-item]

    def test_matcher_values(self, emitted: Emissions) -> None:
        """Payload values may be matchers."""
        emitted.assert_emitted("sale.closed", session_id=mock.ANY, total_cents=pytest.approx(700))

    def test_malformed_name(self, emitted: Emissions) -> None:
        """A malformed name is a ValueError."""
        with pytest.raises(ValueError, match="invalid event name 'sale closed'"):
            emitted.assert_not_emitted("sale closed")

    def test_name_outside_pattern(self, bus: EventBus) -> None:
        """A name outside the recorded pattern is refused."""
        with recording(bus, "sale.*") as emitted:
            bus.emit_sync("ledger.updated")
        with pytest.raises(
            AssertionError, match=r"'ledger\.updated' is outside what this recording"
        ):
            emitted.assert_not_emitted("ledger.updated")

    def test_strict_undeclared(self) -> None:
        """On a strict bus, an undeclared name is refused with a suggestion."""
        bus = EventBus("shop", strict=True)
        bus.declare("sale.closed")
        with recording(bus) as emitted:
            bus.emit_sync("sale.closed")
        with pytest.raises(
            AssertionError,
            match=r"'sale\.closd' matches no event declared on strict bus 'shop'; "
            r"did you mean 'sale\.closed'\?",
        ):
            emitted.assert_not_emitted("sale.closd")

    def test_kept_after_block(self, bus: EventBus) -> None:
        """Emissions keep what was recorded after the block."""
        with recording(bus) as emitted:
            bus.emit_sync("during")
        bus.emit_sync("after")
        assert emitted.names == ["during"]

    def test_clear_forgets(self, emitted: Emissions) -> None:
        """Clear forgets what was recorded."""
        emitted.clear()
        assert (len(emitted), emitted.events) == (0, [])

    def test_needs_a_bus(self) -> None:
        """Recording needs a bus."""
        with (
            pytest.raises(TypeError, match="recording\\(\\) needs an EventBus, not str"),
            recording(
                "bus"  # type: ignore[arg-type]
            ),
        ):
            pass
