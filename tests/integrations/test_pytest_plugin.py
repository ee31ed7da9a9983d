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


def test_emissions_fixture_records_the_bus_of_the_bus_fixture(pytester: pytest.Pytester) -> None:
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


def test_record_emissions_records_the_given_bus(pytester: pytest.Pytester) -> None:
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


def test_record_emissions_records_only_the_given_pattern(pytester: pytest.Pytester) -> None:
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


def test_recording_stops_when_the_test_ends(pytester: pytest.Pytester) -> None:
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


def test_emissions_records_published_emissions_of_an_async_test(
    pytester: pytest.Pytester,
) -> None:
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


def test_emissions_records_the_bus_of_an_async_bus_fixture(pytester: pytest.Pytester) -> None:
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


def test_a_failed_assertion_shows_in_the_test_report(pytester: pytest.Pytester) -> None:
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


def test_a_failed_assertion_hides_the_plugin_frames(pytester: pytest.Pytester) -> None:
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


def test_emissions_without_a_bus_fixture_says_how_to_fix_it(pytester: pytest.Pytester) -> None:
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


def test_emissions_refuses_a_bus_fixture_that_is_not_a_bus(pytester: pytest.Pytester) -> None:
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


def test_the_bus_fixture_name_is_set_by_an_ini_option(pytester: pytest.Pytester) -> None:
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


def test_assert_emitted_returns_the_first_matching_event(emitted: Emissions) -> None:
    event = emitted.assert_emitted("sale.closed", total_cents=500)
    assert (event.name, event["session_id"], event.source) == ("sale.closed", 2, "till")


def test_assert_emitted_accepts_a_pattern(emitted: Emissions) -> None:
    assert emitted.assert_emitted("ledger.*").name == "ledger.updated"


def test_assert_emitted_lists_what_was_emitted_instead_and_why_it_differs(
    emitted: Emissions,
) -> None:
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


def test_assert_emitted_on_an_empty_recording_says_nothing_was_emitted(bus: EventBus) -> None:
    with recording(bus, "sale.*") as emitted:
        pass
    with pytest.raises(AssertionError, match=r"but there was none\.\nNothing matching 'sale\.\*'"):
        emitted.assert_emitted("sale.closed")


def test_assert_emitted_indents_nested_emissions_under_their_parent(bus: EventBus) -> None:
    bus.on("sale.closed", lambda event: bus.emit_sync("ledger.updated"))
    with recording(bus) as emitted:
        bus.emit_sync("sale.closed")
    with pytest.raises(AssertionError, match=r"#1 sale\.closed \{\}\n  #2   ledger\.updated \{\}"):
        emitted.assert_emitted("stock.counted")


def test_assert_emitted_lists_at_most_fifty_emissions(bus: EventBus) -> None:
    with recording(bus) as emitted:
        for number in range(60):
            bus.emit_sync("tick", number=number)
    with pytest.raises(AssertionError, match=r"#50 tick \{'number': 49\}\n  \.\.\. and 10 more$"):
        emitted.assert_emitted("tock")


def test_assert_emitted_once_fails_on_two_matching_emissions(emitted: Emissions) -> None:
    with pytest.raises(
        AssertionError,
        match=r"expected exactly one emission of 'sale.closed' on bus 'test', but there were 2",
    ):
        emitted.assert_emitted_once("sale.closed")


def test_assert_emitted_once_returns_the_single_match(emitted: Emissions) -> None:
    assert emitted.assert_emitted_once("sale.closed", session_id=3)["total_cents"] == 700


def test_assert_not_emitted_passes_when_only_other_payloads_were_emitted(
    emitted: Emissions,
) -> None:
    emitted.assert_not_emitted("sale.closed", session_id=1)


def test_assert_not_emitted_names_the_offending_emissions(emitted: Emissions) -> None:
    with pytest.raises(
        AssertionError,
        match=r"expected no emission of 'sale\.closed' on bus 'test', but found 2 \(#1, #3\)",
    ):
        emitted.assert_not_emitted("sale.closed")


def test_assert_emitted_in_order_allows_other_emissions_in_between(emitted: Emissions) -> None:
    first, last = emitted.assert_emitted_in_order(
        [
            ("sale.closed", {"session_id": 2}),
            ("sale.closed", {"session_id": 3}),
        ]
    )
    assert (first["session_id"], last["session_id"]) == (2, 3)


def test_assert_emitted_in_order_shows_the_missing_step(emitted: Emissions) -> None:
    with pytest.raises(AssertionError) as failure:
        emitted.assert_emitted_in_order(["ledger.updated", "sale.closed", "ledger.updated"])
    assert str(failure.value).startswith(
        "expected emissions in this order on bus 'test':\n"
        "  1. 'ledger.updated': found (#2)\n"
        "  2. 'sale.closed': found (#3)\n"
        "  3. 'ledger.updated': MISSING after #3\n"
        "Emitted (3):\n"
    )


def test_assert_emitted_in_order_refuses_a_single_string(emitted: Emissions) -> None:
    with pytest.raises(TypeError, match=r"not one str: write \['sale\.closed'\]"):
        emitted.assert_emitted_in_order("sale.closed")  # type: ignore[arg-type]


def test_assert_emitted_in_order_refuses_a_malformed_step(emitted: Emissions) -> None:
    with pytest.raises(TypeError, match=r"a name or a \(name, \{key: value\}\) pair, not 42"):
        emitted.assert_emitted_in_order(["sale.closed", 42])  # type: ignore[list-item]


def test_payload_values_may_be_matchers(emitted: Emissions) -> None:
    emitted.assert_emitted("sale.closed", session_id=mock.ANY, total_cents=pytest.approx(700))


def test_a_malformed_name_is_a_value_error(emitted: Emissions) -> None:
    with pytest.raises(ValueError, match="invalid event name 'sale closed'"):
        emitted.assert_not_emitted("sale closed")


def test_a_name_outside_the_recorded_pattern_is_refused(bus: EventBus) -> None:
    with recording(bus, "sale.*") as emitted:
        bus.emit_sync("ledger.updated")
    with pytest.raises(AssertionError, match=r"'ledger\.updated' is outside what this recording"):
        emitted.assert_not_emitted("ledger.updated")


def test_on_a_strict_bus_an_undeclared_name_is_refused_with_a_suggestion() -> None:
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


def test_emissions_keep_what_was_recorded_after_the_block(bus: EventBus) -> None:
    with recording(bus) as emitted:
        bus.emit_sync("during")
    bus.emit_sync("after")
    assert emitted.names == ["during"]


def test_clear_forgets_what_was_recorded(emitted: Emissions) -> None:
    emitted.clear()
    assert (len(emitted), emitted.events) == (0, [])


def test_recording_needs_a_bus() -> None:
    with (
        pytest.raises(TypeError, match="recording\\(\\) needs an EventBus, not str"),
        recording(
            "bus"  # type: ignore[arg-type]
        ),
    ):
        pass
