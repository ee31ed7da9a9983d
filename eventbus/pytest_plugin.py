"""pytest plugin: fixtures that record what a bus emits during a test.

Installed with eventbus (entry point ``pytest11``), so the fixtures are
available in every test of a project that depends on eventbus:

* ``record_emissions(bus, pattern="*")`` records the emissions of any bus
  until the end of the test and returns an ``eventbus.testing.Emissions``;
* ``emissions`` does that for the bus of your ``bus`` fixture (another
  fixture name can be set with the ``eventbus_bus_fixture`` ini option).

```python
async def test_closing_a_session_writes_the_ledger(bus, emissions):
    accounting.setup(bus)
    await bus.emit("sale.closed", session_id=1, total_cents=500)
    emissions.assert_emitted("ledger.updated", entries=2)
```

Disable it with ``-p no:eventbus.pytest_plugin``.

The module has no ``assert`` for pytest to rewrite (PYTEST_DONT_REWRITE), so
importing it before pytest loads it, e.g. for ``RecordEmissions``, is fine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import pytest

from ._bus import EventBus
from .testing import Emissions, Name, recording

__all__ = ["RecordEmissions", "emissions", "record_emissions"]

_BUS_FIXTURE_OPTION = "eventbus_bus_fixture"


class RecordEmissions(Protocol):
    """The type of the ``record_emissions`` fixture, for annotating tests."""

    def __call__(self, bus: EventBus, pattern: Name = "*") -> Emissions:
        """Record the emissions of ``bus`` matching ``pattern`` until the test ends."""
        ...


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``eventbus_bus_fixture`` ini option."""
    parser.addini(
        _BUS_FIXTURE_OPTION,
        "name of the fixture whose EventBus the `emissions` fixture records (default: bus)",
        default="bus",
    )


@pytest.fixture
def record_emissions() -> Iterator[RecordEmissions]:
    """Record the emissions of a bus until the end of the test.

    ``record_emissions(bus, pattern="*")`` returns an ``Emissions`` with
    ``assert_emitted``, ``assert_emitted_once``, ``assert_not_emitted``,
    ``assert_emitted_in_order``, ``events``, ``names`` and ``find``. Call it
    once per bus (or pattern) to record.
    """
    with contextlib.ExitStack() as stack:

        def record(bus: EventBus, pattern: Name = "*") -> Emissions:
            return stack.enter_context(recording(bus, pattern))

        yield record


@pytest.fixture
def emissions(request: pytest.FixtureRequest, record_emissions: RecordEmissions) -> Emissions:
    """The emissions of the bus of your ``bus`` fixture during the test.

    The fixture's name can be changed with the ``eventbus_bus_fixture`` ini option.
    """
    fixture_name = str(request.config.getini(_BUS_FIXTURE_OPTION))
    try:
        bus = request.getfixturevalue(fixture_name)
    except pytest.FixtureLookupError:
        pytest.fail(
            f"the `emissions` fixture records the EventBus of a fixture named {fixture_name!r}, "
            "and there is none: define it (or set the `eventbus_bus_fixture` ini option), "
            "or use `record_emissions(bus)` instead",
            pytrace=False,
        )
    if not isinstance(bus, EventBus):
        pytest.fail(
            f"the `emissions` fixture records the EventBus of the fixture {fixture_name!r}, "
            f"but that fixture is a {type(bus).__name__}: {bus!r}",
            pytrace=False,
        )
    return record_emissions(bus)
