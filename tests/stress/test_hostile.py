"""Hostile input, fuzzed with hypothesis: arbitrary text and non-text as event
names and patterns, huge payloads, payload keys that collide with the
parameters, non-callables, wrong option types. Always the documented error
(type and message), never a crash elsewhere, never a half-registered handler:
a refused call leaves the bus as it was."""

from __future__ import annotations

import asyncio
import functools
import math
import re
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from eventbus import Event, EventBus

NAME_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
PATTERN_RE = re.compile(r"\*|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.\*")
NAME_CHARS = "abzAZ09_-"

FAST = settings(max_examples=150, deadline=None)
HEAVY = settings(max_examples=3000, deadline=None)


def _noop(event: Event) -> None:
    return None


def _other(event: Event) -> None:
    return None


def state(bus: EventBus) -> tuple[object, ...]:
    """Everything a refused call must leave unchanged."""
    with bus.record() as recorder:
        report = bus.emit_sync("keep.me")
    return (
        bus.topics(),
        bus.listener_count(),
        bus.describe(),
        bus.catalog(),
        [r.value for r in report.results],
        recorder.names,
    )


def populated() -> EventBus:
    bus = EventBus("hostile")
    bus.declare("keep.me")
    bus.on("keep.me", lambda event: "exact")
    bus.on("keep.*", lambda event: "pattern", owner="mod")
    bus.on("*", lambda event: "star", priority=-1)
    return bus


# ---------------------------------------------------------------- hostile objects


class ReprRaises:
    """An object that cannot even be shown."""

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ is broken")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis shows it
        printer.text("ReprRaises()")


class HashRaises:
    def __hash__(self) -> int:
        raise ValueError("__hash__ is broken")


class PosesAsAName:
    """Not a str, yet hashes and compares like the name ``keep.me``."""

    def __hash__(self) -> int:
        return hash("keep.me")

    def __eq__(self, other: object) -> bool:
        return other == "keep.me"


HOSTILE_OBJECTS = [ReprRaises(), HashRaises(), PosesAsAName()]
hostile_objects = st.one_of(st.builds(ReprRaises), st.builds(HashRaises), st.builds(PosesAsAName))

non_text = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=20),
    st.lists(st.text(NAME_CHARS, max_size=5), max_size=3),
    st.tuples(st.text(NAME_CHARS, min_size=1, max_size=5)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.frozensets(st.integers(), max_size=2),
    st.sampled_from(
        [
            object(),
            b"keep.me",
            bytearray(b"keep.me"),
            memoryview(b"keep.me"),
            Ellipsis,
            NotImplemented,
            str,
            1j,
            _noop,
        ]
    ),
    hostile_objects,
)
any_text = st.one_of(
    st.text(),  # any unicode, surrogates included
    st.text(NAME_CHARS + ".*", max_size=20),
    st.from_regex(NAME_RE, fullmatch=True),
    st.from_regex(PATTERN_RE, fullmatch=True),
    st.sampled_from(["", ".", "*", "**", "a.*.b", "a..b", " a", "a\n", "a\x00", "\ud800"]),
)


# ---------------------------------------------------------------- names and patterns


entered: list[object] = []


def _subscribed(bus: EventBus, name: Any) -> None:
    with bus.subscribed(name, _other):
        entered.append(name)


def _record(bus: EventBus, name: Any) -> None:
    with bus.record(name):
        pass


def _muted(bus: EventBus, name: Any) -> None:
    with bus.muted("keep.me", name):
        pass


def _publish(bus: EventBus, name: Any) -> None:
    async def publish_and_wait() -> None:
        await bus.publish(name)

    asyncio.run(publish_and_wait())


def _emit(bus: EventBus, name: Any) -> None:
    asyncio.run(bus.emit(name))


PATTERN_ENTRY_POINTS: dict[str, Callable[[EventBus, Any], object]] = {
    "on": lambda bus, name: bus.on(name, _other),
    "on-decorator": lambda bus, name: bus.on(name)(_other),
    "once": lambda bus, name: bus.once(name, _other),
    "off": lambda bus, name: bus.off(name, _other),
    "subscribed": _subscribed,
    "listeners": lambda bus, name: bus.listeners(name),
    "listener_count": lambda bus, name: bus.listener_count(name),
    "has_listeners": lambda bus, name: bus.has_listeners(name),
    "clear": lambda bus, name: bus.clear(name, owner="nobody"),
    "record": _record,
    "muted": _muted,
}


NAME_ENTRY_POINTS: dict[str, Callable[[EventBus, Any], object]] = {
    "emit": _emit,
    "emit_sync": lambda bus, name: bus.emit_sync(name),
    "publish": _publish,
    "declare": lambda bus, name: bus.declare(name),
    "Event": lambda bus, name: Event(name),
}


# Calls that change the bus when they succeed; the others must leave it as it was.
CHANGES_STATE = {"on", "on-decorator", "once", "declare"}


def check_text_is_accepted_exactly_when_valid(text: str) -> None:
    is_name = NAME_RE.fullmatch(text) is not None
    is_pattern = PATTERN_RE.fullmatch(text) is not None
    for entry_points, valid in (
        (PATTERN_ENTRY_POINTS, is_name or is_pattern),
        (NAME_ENTRY_POINTS, is_name),
    ):
        for entry, call in entry_points.items():
            bus = populated()
            before = state(bus)
            if valid:
                call(bus, text)
                if entry not in CHANGES_STATE:
                    assert state(bus) == before, entry
            else:
                entered.clear()
                with pytest.raises(ValueError, match=re.escape(repr(text))):
                    call(bus, text)
                assert state(bus) == before, entry
                assert entered == []


def check_non_text_is_a_type_error(value: object) -> None:
    for entry, call in {**PATTERN_ENTRY_POINTS, **NAME_ENTRY_POINTS}.items():
        bus = populated()
        before = state(bus)
        with pytest.raises(TypeError, match=re.escape(type(value).__name__)):
            call(bus, value)
        assert state(bus) == before, entry


class TestNames:
    @FAST
    @given(any_text)
    def test_any_text_name(self, text: str) -> None:
        """Any text as a name is accepted exactly when it is valid."""
        check_text_is_accepted_exactly_when_valid(text)

    @pytest.mark.heavy
    @HEAVY
    @given(any_text)
    def test_any_text_name_many(self, text: str) -> None:
        """Any text as a name is accepted exactly when it is valid, many times."""
        check_text_is_accepted_exactly_when_valid(text)

    @FAST
    @given(non_text)
    def test_non_text_name(self, value: object) -> None:
        """Non-text as a name is a TypeError naming its type."""
        check_non_text_is_a_type_error(value)

    @pytest.mark.heavy
    @HEAVY
    @given(non_text)
    def test_non_text_name_many(self, value: object) -> None:
        """Non-text as a name is a TypeError naming its type, many times."""
        check_non_text_is_a_type_error(value)

    @pytest.mark.parametrize("entry", ["emit", "emit_sync", "publish", "has_listeners", "on"])
    @pytest.mark.parametrize("hostile", HOSTILE_OBJECTS, ids=lambda o: type(o).__name__)
    def test_hostile_name(self, entry: str, hostile: object) -> None:
        """Hostile object as a name is a type error.

        Regression: objects whose ``__repr__`` or ``__hash__`` raise, or that
        pose as a known name, must meet the same ``TypeError`` as any non-str (the
        emit fast path looked them up in its route cache first)."""
        bus = populated()
        before = state(bus)
        bus.emit_sync("keep.me")  # "keep.me" is now a cached route
        call = {**PATTERN_ENTRY_POINTS, **NAME_ENTRY_POINTS}[entry]

        with pytest.raises(TypeError, match=type(hostile).__name__):
            call(bus, hostile)

        assert state(bus) == before

    @pytest.mark.parametrize("length", [10_000, 1_000_000])
    def test_huge_names(self, length: int) -> None:
        """Huge names are accepted or refused by the same rules."""
        bus = populated()
        long_name = ".".join(["segment"] * (length // 8))
        seen: list[str] = []
        bus.on(long_name, lambda event: seen.append(event.name))

        assert bus.emit_sync(long_name).ok
        assert seen == [long_name]
        with pytest.raises(ValueError, match="invalid event name"):
            bus.emit_sync(long_name + ".")
        with pytest.raises(ValueError, match="invalid event name"):
            bus.on("x" * length + " ", _noop)


# ---------------------------------------------------------------- payloads


payload_keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["name", "source", "self", "payload", "event", "id", "", "*", "a.b"]),
)


payload_values = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=3),
    hostile_objects,
)


async def emit_three_ways(bus: EventBus, payload: dict[str, Any]) -> list[Any]:
    """Emit with this payload through emit, emit_sync and publish; each outcome
    is the report or the exception raised."""
    outcomes: list[Any] = []
    for how in ("emit", "emit_sync", "publish"):
        try:
            if how == "emit":
                outcomes.append(await bus.emit("keep.me", **payload))
            elif how == "emit_sync":
                outcomes.append(bus.emit_sync("keep.me", **payload))
            else:
                outcomes.append(await bus.publish("keep.me", **payload))
        except TypeError as error:
            outcomes.append(error)
    return outcomes


def check_payload_is_delivered_as_given(payload: dict[str, Any]) -> None:
    bus = EventBus("hostile")
    received: list[Event] = []
    bus.on("keep.me", received.append)

    outcomes = asyncio.run(emit_three_ways(bus, payload))

    source = payload.get("source")
    expected = {key: value for key, value in payload.items() if key != "source"}
    if source is None or isinstance(source, str):
        assert len(received) == 3
        for event in received:
            assert event.name == "keep.me"
            assert event.source == source
            assert event.payload.keys() == expected.keys()
            assert all(event.payload[key] is value for key, value in expected.items())
    else:
        assert received == []
        for outcome in outcomes:
            assert isinstance(outcome, TypeError)
            assert re.search("source must be a str", str(outcome))


class TestPayloads:
    @FAST
    @given(st.dictionaries(payload_keys, payload_values, max_size=6))
    def test_any_payload(self, payload: dict[str, Any]) -> None:
        """Any payload is delivered as given, and source is never a payload key."""
        check_payload_is_delivered_as_given(payload)

    @pytest.mark.heavy
    @HEAVY
    @given(st.dictionaries(payload_keys, payload_values, max_size=12))
    def test_any_payload_many(self, payload: dict[str, Any]) -> None:
        """Any payload is delivered as given many times."""
        check_payload_is_delivered_as_given(payload)

    def test_non_str_keys(self, bus: EventBus) -> None:
        """Payload keys that are not str are refused before anything runs."""
        ran: list[Event] = []
        bus.on("x", ran.append)

        with pytest.raises(TypeError, match="keywords must be strings"):
            bus.emit_sync("x", **{1: "one"})  # type: ignore[misc]

        assert ran == []

    async def test_huge_payload(self, bus: EventBus) -> None:
        """A huge payload is delivered without copying values and never logged."""
        huge_value = "secret" * 2_000_000
        payload = {f"key{i}": i for i in range(100_000)}
        payload["big"] = huge_value  # type: ignore[assignment]
        received: list[Event] = []
        bus.on("x", received.append)

        with capture_logs() as logs:
            reports = [
                await bus.emit("x", **payload),
                bus.emit_sync("x", **payload),
                await bus.publish("x", **payload),
            ]

        assert all(report.ok for report in reports)
        assert len(received) == 3
        for event in received:
            assert len(event.payload) == 100_001
            assert event["big"] is huge_value
        assert len(logs) == 3
        assert not any("secret" in repr(entry) or "key99999" in repr(entry) for entry in logs)


# ---------------------------------------------------------------- handlers and options


class Plain:
    def handle(self, event: Event) -> str:
        return "method"

    def __call__(self, event: Event) -> str:
        return "callable"


class Slotted:
    """Neither its instances nor its bound methods can be referenced weakly."""

    __slots__ = ()

    def handle(self, event: Event) -> str:
        return "slotted method"

    def __call__(self, event: Event) -> str:
        return "slotted callable"


def _function(event: Event) -> str:
    return "function"


HANDLERS: dict[str, tuple[Callable[[Event], Any], bool]] = {
    # name: (handler, may it be held weakly)
    "function": (_function, True),
    "lambda": (lambda event: "lambda", True),
    "bound method": (Plain().handle, True),
    "callable object": (Plain(), True),
    "partial": (functools.partial(_function), True),
    "builtin": (print, False),
    "slotted method": (Slotted().handle, False),
    "slotted callable": (Slotted(), False),
}


priorities = st.one_of(
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.none(),
    st.text(max_size=3),
    st.sampled_from([(1,), b"1"]),
    st.builds(list),
    st.builds(ReprRaises),
)


onces = st.one_of(st.booleans(), st.integers(-1, 2), st.none(), st.text(max_size=3))


weaks = st.one_of(st.none(), st.booleans(), st.integers(-1, 2), st.text(max_size=3))


timeouts = st.one_of(
    st.none(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=3),
    st.builds(list),
    st.builds(ReprRaises),
)


owners = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.binary(max_size=3))


predicates = st.one_of(
    st.none(),
    st.just(lambda event: True),
    st.integers(),
    st.text(max_size=5),
    st.just(b"x"),
    st.builds(ReprRaises),
)


def expected_problems(options: dict[str, Any], may_be_weak: bool) -> dict[str, type[Exception]]:
    """The documented error of each wrong option (API.md, BRIEF decision 20)."""
    problems: dict[str, type[Exception]] = {}
    priority, timeout = options["priority"], options["timeout"]
    if not isinstance(priority, int) or isinstance(priority, bool):
        problems["priority"] = TypeError
    if not isinstance(options["once"], bool):
        problems["once"] = TypeError
    if options["weak"] is not None and type(options["weak"]) is not bool:
        problems["weak"] = TypeError
    elif options["weak"] is True and not may_be_weak:
        problems["weakly"] = TypeError  # "cannot hold ... weakly"
    if timeout is not None:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            problems["timeout"] = TypeError
        elif math.isnan(timeout) or timeout < 0:
            problems["timeout"] = ValueError
    if options["owner"] is not None and not isinstance(options["owner"], str):
        problems["owner"] = TypeError
    if options["predicate"] is not None and not callable(options["predicate"]):
        problems["predicate"] = TypeError
    return problems


def _subscribe_with_block(bus: EventBus, handler: Any, options: dict[str, Any]) -> None:
    with bus.subscribed("keep.me", handler, **options):
        pass


SUBSCRIBERS: dict[str, Callable[[EventBus, Any, dict[str, Any]], object]] = {
    "on": lambda bus, handler, options: bus.on("keep.me", handler, **options),
    "on-decorator": lambda bus, handler, options: bus.on("keep.me", **options)(handler),
    "once": lambda bus, handler, options: bus.once(
        "keep.me", handler, **{k: v for k, v in options.items() if k != "once"}
    ),
    "subscribed": _subscribe_with_block,
}


def check_options(subscriber: str, handler_kind: str, options: dict[str, Any]) -> None:
    bus = populated()
    before = state(bus)
    handler, may_be_weak = HANDLERS[handler_kind]
    if subscriber == "once":
        options = {**options, "once": True}
    problems = expected_problems(options, may_be_weak)

    if not problems:
        SUBSCRIBERS[subscriber](bus, handler, options)
        if subscriber == "subscribed":
            assert state(bus) == before
            return
        infos = [i for i in bus.listeners("keep.me") if i.callback == handler]
        assert len(infos) == 1
        info = infos[0]
        assert info.priority == options["priority"]
        assert info.once is options["once"]
        assert info.owner == options["owner"]
        assert info.has_predicate is (options["predicate"] is not None)
        assert info.timeout == (None if options["timeout"] is None else float(options["timeout"]))
        is_method = handler_kind in ("bound method", "slotted method")
        weak = options["weak"] is True or (options["weak"] is None and is_method and may_be_weak)
        assert info.weak is weak
        assert bus.listener_count() == before[1] + 1
        return

    with pytest.raises((TypeError, ValueError)) as raised:
        SUBSCRIBERS[subscriber](bus, handler, options)
    named = [option for option in problems if option in str(raised.value)]
    assert named, f"{raised.value!r} names none of {sorted(problems)}"
    assert any(isinstance(raised.value, problems[option]) for option in named)
    assert state(bus) == before


option_sets = st.fixed_dictionaries(
    {
        "priority": priorities,
        "once": onces,
        "predicate": predicates,
        "weak": weaks,
        "timeout": timeouts,
        "owner": owners,
    }
)


non_callables = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([object(), Event("a")]),
    hostile_objects,
)


HANDLER_ENTRY_POINTS: dict[str, Callable[[EventBus, Any], object]] = {
    "on": lambda bus, handler: bus.on("keep.me", handler),
    "on-decorator": lambda bus, handler: bus.on("keep.me")(handler),
    "once": lambda bus, handler: bus.once("keep.*", handler),
    "off": lambda bus, handler: bus.off("keep.me", handler),
    "subscribed": lambda bus, handler: _subscribe_with_block(bus, handler, {}),
}


bus_arguments = st.fixed_dictionaries(
    {
        "name": st.one_of(st.text(max_size=5), st.integers(), st.none()),
        "max_depth": st.one_of(
            st.integers(-3, 40), st.booleans(), st.floats(), st.text(max_size=2)
        ),
        "strict": st.one_of(st.booleans(), st.integers(0, 1), st.none()),
        "handler_timeout": timeouts,
        "on_error": st.one_of(st.none(), st.just(print), st.integers(), st.text(max_size=2)),
    }
)


class TestHandlersAndOptions:
    @FAST
    @given(st.sampled_from(list(SUBSCRIBERS)), st.sampled_from(list(HANDLERS)), option_sets)
    def test_any_options(self, subscriber: str, handler_kind: str, options: dict[str, Any]) -> None:
        """Any options give the documented error or exactly that subscription."""
        check_options(subscriber, handler_kind, options)

    @pytest.mark.heavy
    @HEAVY
    @given(st.sampled_from(list(SUBSCRIBERS)), st.sampled_from(list(HANDLERS)), option_sets)
    def test_any_options_many(
        self, subscriber: str, handler_kind: str, options: dict[str, Any]
    ) -> None:
        """Any options give the documented error many times."""
        check_options(subscriber, handler_kind, options)

    @FAST
    @given(st.sampled_from(list(HANDLER_ENTRY_POINTS)), non_callables)
    def test_non_callable_handler(self, entry: str, value: object) -> None:
        """Non-callable handler is a TypeError and registers nothing."""
        assume(not (value is None and entry in ("on", "once")))  # that is the decorator form
        bus = populated()
        before = state(bus)

        with pytest.raises(TypeError, match="handler must be callable"):
            HANDLER_ENTRY_POINTS[entry](bus, value)

        assert state(bus) == before

    @FAST
    @given(bus_arguments)
    def test_bus_arguments(self, arguments: dict[str, Any]) -> None:
        """Bus arguments give the documented error or a working bus."""
        problems: dict[str, type[Exception]] = {}
        name, depth, timeout = (
            arguments["name"],
            arguments["max_depth"],
            arguments["handler_timeout"],
        )
        if not isinstance(name, str):
            problems["name"] = TypeError
        elif not name:
            problems["name"] = ValueError
        if not isinstance(depth, int) or isinstance(depth, bool):
            problems["max_depth"] = TypeError
        elif depth < 0:
            problems["max_depth"] = ValueError
        if not isinstance(arguments["strict"], bool):
            problems["strict"] = TypeError
        valid_but_timeout = {
            "priority": 0,
            "once": False,
            "weak": None,
            "owner": None,
            "predicate": None,
            "timeout": timeout,
        }
        if "timeout" in (timeout_problems := expected_problems(valid_but_timeout, True)):
            problems["handler_timeout"] = timeout_problems["timeout"]
        if arguments["on_error"] is not None and not callable(arguments["on_error"]):
            problems["on_error"] = TypeError

        if not problems:
            bus = EventBus(**arguments)
            bus.declare("a")
            bus.on("a", lambda event: "ran")
            assert bus.emit_sync("a").values == ("ran",)
            return
        with pytest.raises((TypeError, ValueError)) as raised:
            EventBus(**arguments)
        named = [argument for argument in problems if argument in str(raised.value)]
        assert named, f"{raised.value!r} names none of {sorted(problems)}"
        assert any(isinstance(raised.value, problems[argument]) for argument in named)


# ---------------------------------------------------------------- unusual callables


@pytest.fixture
def mocks() -> list[mock.Mock]:
    return [
        mock.Mock(return_value=1),
        mock.MagicMock(return_value=2),
        mock.AsyncMock(return_value=3),
    ]


class TestUnusualCallables:
    async def test_mock_handlers(self, mocks: list[mock.Mock]) -> None:
        """Mock objects are accepted and called as handlers.

        Regression: naming a Mock recursed without end (``hasattr(mock, "func")``
        is true for a Mock, and so on for ``mock.func.func``...)."""
        bus = EventBus("hostile")
        for handler in mocks:
            bus.on("x", handler)

        report = await bus.emit("x", n=1)

        assert report.values == (1, 2, 3)
        for handler in mocks:
            handler.assert_called_once_with(report.event)
        assert [info.is_async for info in bus.listeners("x")] == [False, False, True]
        assert bus.off("x", mocks[0]) is True

    def test_mock_predicate(self, bus: EventBus) -> None:
        """Mock is accepted as a predicate."""
        predicate = mock.Mock(return_value=False)
        bus.on("x", _noop, predicate=predicate)

        report = bus.emit_sync("x")

        assert report.results == ()
        predicate.assert_called_once_with(report.event)
