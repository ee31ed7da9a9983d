"""Assertions on what a bus emitted, for tests (with pytest or without).

```python
from eventbus.testing import recording

with recording(bus) as emitted:
    await bus.emit("sale.closed", session_id=1, total_cents=500)
emitted.assert_emitted("sale.closed", session_id=1)
emitted.assert_not_emitted("sale.cancelled")
emitted.assert_emitted_in_order(["sale.closed", "ledger.updated"])
```

A failed assertion raises ``AssertionError`` listing every emission that was
recorded instead, with its payload. With pytest, the plugin in
``eventbus.pytest_plugin`` offers the same through fixtures.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias, TypeVar, final, overload

from ._bus import EventBus
from ._event import Event
from ._names import check_pattern, is_pattern, key_matches, keys_overlap
from ._testing import Recorder
from ._topic import Topic

__all__ = ["Emissions", "Expected", "Name", "recording"]

Name: TypeAlias = str | Topic[Any]
"""An event name or pattern, or a ``Topic`` (its name)."""

Expected: TypeAlias = str | Topic[Any] | tuple[str | Topic[Any], Mapping[str, Any]]
"""One step of ``assert_emitted_in_order``: a name, pattern or topic, or a
``(name, {key: value, ...})`` pair that also checks part of the payload."""

_MAX_LISTED: Final = 50
T = TypeVar("T")


@final
class Emissions:
    """The emissions of one bus recorded during a test, with assertions.

    Every emission matching the recording's pattern is kept, in the order the
    emissions started (a nested emission comes after the one whose handler
    emitted it), whether or not any handler listened, even when muted.
    Emissions refused before any handler ran (a loop, a bad payload, a closed
    bus) are not recorded.

    Payload values are compared with ``==``, expected value first, so matchers
    such as ``unittest.mock.ANY`` or ``pytest.approx(...)`` work.
    """

    __slots__ = ("_bus", "_recorder")

    def __init__(self, bus: EventBus, recorder: Recorder) -> None:
        self._bus: Final = bus
        self._recorder: Final = recorder

    @property
    def bus(self) -> EventBus:
        """The bus being recorded."""
        return self._bus

    @property
    def events(self) -> list[Event]:
        """The recorded events, in emission order (a copy)."""
        return list(self._recorder.events)

    @property
    def names(self) -> list[str]:
        """The recorded event names, in emission order."""
        return [event.name for event in self._recorder.events]

    @overload
    def find(self, name: Topic[T], /, **payload: Any) -> list[Event[T]]: ...
    @overload
    def find(self, name: str, /, **payload: Any) -> list[Event]: ...
    def find(self, name: Name, /, **payload: Any) -> list[Event[Any]]:
        """The recorded events matching ``name`` (a name, a ``prefix.*``
        pattern or a topic) whose payload has these keys with these values."""
        name = self._check_name(name)
        return [event for event in self._recorder.events if _matches(event, name, payload)]

    def clear(self) -> None:
        """Forget what was recorded so far; recording goes on."""
        self._recorder.clear()

    @overload
    def assert_emitted(self, name: Topic[T], /, **payload: Any) -> Event[T]: ...
    @overload
    def assert_emitted(self, name: str, /, **payload: Any) -> Event: ...
    def assert_emitted(self, name: Name, /, **payload: Any) -> Event[Any]:
        """Assert that an event matching ``name`` (a name or a pattern) was
        emitted with at least these payload items; return the first such event."""
        __tracebackhide__ = True
        name = self._check_name(name)
        found = self.find(name, **payload)
        if not found:
            raise AssertionError(
                f"expected an emission of {_describe(name, payload)} on bus "
                f"{self._bus.name!r}, but there was none.\n"
                f"{self._listing(name, payload)}"
            )
        return found[0]

    @overload
    def assert_emitted_once(self, name: Topic[T], /, **payload: Any) -> Event[T]: ...
    @overload
    def assert_emitted_once(self, name: str, /, **payload: Any) -> Event: ...
    def assert_emitted_once(self, name: Name, /, **payload: Any) -> Event[Any]:
        """Assert that exactly one event matching ``name`` and these payload
        items was emitted; return it."""
        __tracebackhide__ = True
        name = self._check_name(name)
        found = self.find(name, **payload)
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one emission of {_describe(name, payload)} on bus "
                f"{self._bus.name!r}, but there were {len(found)}.\n"
                f"{self._listing(name, payload)}"
            )
        return found[0]

    def assert_not_emitted(self, name: Name, /, **payload: Any) -> None:
        """Assert that no event matching ``name`` (and these payload items, if
        any are given) was emitted."""
        __tracebackhide__ = True
        name = self._check_name(name)
        found = self.find(name, **payload)
        if found:
            numbers = ", ".join(f"#{self._number(event)}" for event in found)
            raise AssertionError(
                f"expected no emission of {_describe(name, payload)} on bus "
                f"{self._bus.name!r}, but found {len(found)} ({numbers}).\n"
                f"{self._listing(name, payload)}"
            )

    def assert_emitted_in_order(self, expected: Sequence[Expected]) -> list[Event]:
        """Assert that events matching ``expected`` were emitted in this order,
        other emissions possibly coming in between; return the matched events.

        Each step is a name or pattern, or a ``(name, {key: value})`` pair.
        """
        __tracebackhide__ = True
        if isinstance(expected, str):
            raise TypeError(
                "assert_emitted_in_order() takes a sequence of names, not one str: "
                f"write [{expected!r}]"
            )
        steps = [(self._check_name(name), payload) for name, payload in map(_step, expected)]
        events = self._recorder.events[:]
        matched: list[Event] = []
        position = 0
        for index, (name, payload) in enumerate(steps):
            hit = next(
                (i for i in range(position, len(events)) if _matches(events[i], name, payload)),
                None,
            )
            if hit is None:
                raise AssertionError(
                    f"expected emissions in this order on bus {self._bus.name!r}:\n"
                    f"{_steps_report(steps, matched, index, self._number)}\n"
                    f"{self._listing(name, payload)}"
                )
            matched.append(events[hit])
            position = hit + 1
        return matched

    def __len__(self) -> int:
        return len(self._recorder.events)

    def __repr__(self) -> str:
        return (
            f"<Emissions of bus {self._bus.name!r} pattern={self._recorder.pattern!r} "
            f"events={len(self)}>"
        )

    def _check_name(self, name: Name) -> str:
        """``name`` as a str (a topic's name); refuse a malformed name, and on a
        strict bus a name that no declared event matches (a typo would make
        ``assert_not_emitted`` pass)."""
        name = check_pattern(name)
        seen = self._recorder.pattern
        if not keys_overlap(seen, name):
            raise AssertionError(
                f"{name!r} is outside what this recording sees ({seen!r}): "
                "record a pattern that covers it"
            )
        if not self._bus.strict:
            return name
        declared = [spec.name for spec in self._bus.catalog()]
        if is_pattern(name):
            if any(key_matches(name, known) for known in declared):
                return name
        elif name in declared:
            return name
        close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise AssertionError(
            f"{name!r} matches no event declared on strict bus {self._bus.name!r}{hint}"
        )

    def _number(self, event: Event) -> int:
        """1-based position of a recorded event, as the listings show it."""
        for index, recorded in enumerate(self._recorder.events, 1):
            if recorded is event:
                return index
        return 0

    def _listing(self, name: str, payload: Mapping[str, Any]) -> str:
        """Every recorded emission, with why each one of the right name did not match."""
        events = self._recorder.events[:]
        pattern = self._recorder.pattern
        recorded = "" if pattern == "*" else f" matching {pattern!r}"
        if not events:
            return f"Nothing{recorded} was emitted."
        lines = [f"Emitted{recorded} ({len(events)}):"]
        for index, event in enumerate(events[:_MAX_LISTED], 1):
            line = f"  #{index} {'  ' * event.depth}{event.name} {dict(event.payload)!r}"
            if event.source is not None:
                line += f" source={event.source!r}"
            if payload and key_matches(name, event.name):
                differences = _differences(event, payload)
                if differences:
                    line += f"  <- {differences}"
            lines.append(line)
        if len(events) > _MAX_LISTED:
            lines.append(f"  ... and {len(events) - _MAX_LISTED} more")
        return "\n".join(lines)


@contextlib.contextmanager
def recording(bus: EventBus, pattern: Name = "*") -> Iterator[Emissions]:
    """Record the emissions of ``bus`` matching ``pattern`` inside the block.

    The yielded ``Emissions`` keeps what was recorded after the block ends.
    """
    if not isinstance(bus, EventBus):
        raise TypeError(f"recording() needs an EventBus, not {type(bus).__name__}: {bus!r}")
    with bus.record(pattern) as recorder:
        yield Emissions(bus, recorder)


def _matches(event: Event, name: str, payload: Mapping[str, Any]) -> bool:
    if not key_matches(name, event.name):
        return False
    actual = event.payload
    return all(key in actual and _equal(expected, actual[key]) for key, expected in payload.items())


def _equal(expected: object, actual: object) -> bool:
    """``expected == actual``: the expected value's ``__eq__`` first, so matchers work."""
    return bool(expected == actual)


def _differences(event: Event, payload: Mapping[str, Any]) -> str:
    actual = event.payload
    found = []
    for key, expected in payload.items():
        if key not in actual:
            found.append(f"no {key!r}")
        elif not _equal(expected, actual[key]):
            found.append(f"{key}={actual[key]!r}, not {expected!r}")
    return "; ".join(found)


def _describe(name: str, payload: Mapping[str, Any]) -> str:
    if not payload:
        return repr(name)
    items = ", ".join(f"{key}={value!r}" for key, value in payload.items())
    return f"{name!r} with {items}"


def _step(item: object) -> tuple[Name, Mapping[str, Any]]:
    if isinstance(item, str | Topic):
        return item, {}
    if (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str | Topic)
        and isinstance(item[1], Mapping)
    ):
        return item[0], item[1]
    raise TypeError(
        f"each expected emission must be a name or a (name, {{key: value}}) pair, not {item!r}"
    )


def _steps_report(
    steps: list[tuple[str, Mapping[str, Any]]],
    matched: list[Event],
    failed: int,
    number: Callable[[Event], int],
) -> str:
    lines = []
    for index, (name, payload) in enumerate(steps):
        if index < failed:
            outcome = f"found (#{number(matched[index])})"
        elif index == failed:
            after = f" after #{number(matched[-1])}" if matched else ""
            outcome = f"MISSING{after}"
        else:
            outcome = "not checked"
        lines.append(f"  {index + 1}. {_describe(name, payload)}: {outcome}")
    return "\n".join(lines)
