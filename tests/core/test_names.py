"""Event-name and pattern validation at every entry point, and pattern matching."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Any

import pytest
from emitters import Emitter
from hypothesis import given
from hypothesis import strategies as st

from eventbus import Event, EventBus

NAME_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
PATTERN_RE = re.compile(r"\*|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.\*")


def _noop(event: Event) -> None:
    return None


def _subscribed(bus: EventBus, name: Any) -> None:
    with bus.subscribed(name, _noop):
        pass


def _record(bus: EventBus, name: Any) -> None:
    with bus.record(name):
        pass


def _muted(bus: EventBus, name: Any) -> None:
    with bus.muted(name):
        pass


def _muted_among_valid(bus: EventBus, name: Any) -> None:
    with bus.muted("keep.me", name):
        pass


# Synchronous entry points that take an event name; (await) emit and publish are
# tested separately below because they need a running loop.
PATTERN_ENTRY_POINTS: dict[str, Callable[[EventBus, Any], object]] = {
    "on": lambda bus, name: bus.on(name, _noop),
    "on-decorator": lambda bus, name: bus.on(name)(_noop),
    "once": lambda bus, name: bus.once(name, _noop),
    "once-decorator": lambda bus, name: bus.once(name)(_noop),
    "off": lambda bus, name: bus.off(name, _noop),
    "subscribed": _subscribed,
    "listeners": lambda bus, name: bus.listeners(name),
    "listener_count": lambda bus, name: bus.listener_count(name),
    "has_listeners": lambda bus, name: bus.has_listeners(name),
    "clear": lambda bus, name: bus.clear(name),
    "clear-with-owner": lambda bus, name: bus.clear(name, owner="mod"),
    "record": _record,
    "muted": _muted,
    "muted-among-valid": _muted_among_valid,
}
NAME_ONLY_ENTRY_POINTS: dict[str, Callable[[EventBus, Any], object]] = {
    "emit_sync": lambda bus, name: bus.emit_sync(name),
    "declare": lambda bus, name: bus.declare(name),
    "Event": lambda bus, name: Event(name),
}
ENTRY_POINTS = {**PATTERN_ENTRY_POINTS, **NAME_ONLY_ENTRY_POINTS}
# None means "all" for these two, so it is not a bad value there.
NONE_MEANS_ALL = {"listener_count", "clear", "clear-with-owner"}

NON_STR = [42, 1.5, b"user.login", ("user",), ["user"], object()]

INVALID = [
    "",
    " ",
    "user login",
    " user",
    "user ",
    "user.login ",
    "a..b",
    ".a",
    "a.",
    ".",
    "..",
    "a.b.",
    "a/b",
    "a:b",
    "a,b",
    "a+b",
    "a#b",
    "a$",
    "a\tb",
    "a\nb",
    "user.login\n",
    "a\x00b",
    # unicode letters, digits and spaces are not in [A-Za-z0-9_-]
    "café",
    "ü",
    "用户.登录",
    "user.\u0665",
    "\uff21\uff22",
    "a\u00a0b",
    "a\u2013b",
    # '*' anywhere but as a whole last segment
    "a.*.b",
    "user*",
    "*user",
    "*.x",
    "**",
    "user.**",
    "user.*x",
    "user.*.*",
    ".*",
    "*.",
    "user.*.",
]

VALID_NAMES = [
    "sale.closed",
    "member.created",
    "article-import.done",
    "user",
    "A",
    "9",
    "-",
    "_",
    "a_b.C-9",
    "Sale.Closed",
    "a.b.c.d.e.f.g",
]

VALID_PATTERNS = ["*", "user.*", "user.profile.*", "article-import.*", "A_9.*"]


@pytest.fixture
def populated() -> EventBus:
    """A bus with state that a failed call must leave alone."""
    bus = EventBus("populated")
    bus.declare("keep.me")
    bus.on("keep.me", _noop)
    bus.on("keep.*", _noop, owner="mod")
    bus.on("*", _noop)
    return bus


def _state(bus: EventBus) -> tuple[object, ...]:
    return bus.topics(), bus.listener_count(), bus.catalog(), bus.describe()


def _assert_mute_and_record_state_untouched(bus: EventBus) -> None:
    with bus.record() as recorder:
        report = bus.emit_sync("keep.me")
    assert recorder.names == ["keep.me"]
    assert len(report.results) == 3  # nothing left muted


# ---------------------------------------------------------------- bad values


class TestBadNames:
    @pytest.mark.parametrize("value", NON_STR, ids=repr)
    @pytest.mark.parametrize("entry_point", ENTRY_POINTS)
    def test_non_str_name(self, populated: EventBus, entry_point: str, value: object) -> None:
        """Non-str name raises TypeError."""
        before = _state(populated)

        with pytest.raises(TypeError, match="str"):
            ENTRY_POINTS[entry_point](populated, value)

        assert _state(populated) == before
        _assert_mute_and_record_state_untouched(populated)

    @pytest.mark.parametrize("entry_point", sorted(set(ENTRY_POINTS) - NONE_MEANS_ALL))
    def test_none_name(self, populated: EventBus, entry_point: str) -> None:
        """None as name raises TypeError."""
        before = _state(populated)

        with pytest.raises(TypeError, match="str"):
            ENTRY_POINTS[entry_point](populated, None)

        assert _state(populated) == before

    @pytest.mark.parametrize("value", INVALID, ids=ascii)
    @pytest.mark.parametrize("entry_point", ENTRY_POINTS)
    def test_invalid_name(self, populated: EventBus, entry_point: str, value: str) -> None:
        """Invalid name raises ValueError naming it."""
        before = _state(populated)

        with pytest.raises(ValueError, match=re.escape(repr(value))):
            ENTRY_POINTS[entry_point](populated, value)

        assert _state(populated) == before
        _assert_mute_and_record_state_untouched(populated)

    @pytest.mark.parametrize("value", VALID_PATTERNS)
    @pytest.mark.parametrize("entry_point", NAME_ONLY_ENTRY_POINTS)
    def test_pattern_as_name(self, populated: EventBus, entry_point: str, value: str) -> None:
        """A pattern where a concrete name is required raises ValueError."""
        before = _state(populated)

        with pytest.raises(ValueError, match=re.escape(repr(value))):
            NAME_ONLY_ENTRY_POINTS[entry_point](populated, value)

        assert _state(populated) == before

    @pytest.mark.parametrize("value", [*INVALID, *VALID_PATTERNS], ids=ascii)
    async def test_emission_invalid_name(
        self, populated: EventBus, emit: Emitter, value: str
    ) -> None:
        """An emission with an invalid name or a pattern raises ValueError."""
        before = _state(populated)

        with (
            populated.record() as recorder,
            pytest.raises(ValueError, match=re.escape(repr(value))),
        ):
            await emit(populated, value)
        await populated.drain()

        assert recorder.events == []
        assert _state(populated) == before

    @pytest.mark.parametrize("value", [None, *NON_STR], ids=repr)
    async def test_emission_non_str_name(
        self, populated: EventBus, emit: Emitter, value: object
    ) -> None:
        """An emission with a non-str name raises TypeError."""
        with pytest.raises(TypeError, match="str"):
            await emit(populated, value)  # type: ignore[arg-type]
        await populated.drain()

    def test_emit_pattern_message(self, bus: EventBus) -> None:
        """Emit of a pattern says emit takes concrete names."""
        with pytest.raises(ValueError, match=r"'user\.\*'"):
            bus.emit_sync("user.*")

    def test_strict_bad_name(self) -> None:
        """A strict bus still raises ValueError for a bad name."""
        bus = EventBus("strict", strict=True)
        bus.declare("user.login")

        with pytest.raises(ValueError, match=re.escape("'user..login'")):
            bus.on("user..login", _noop)
        with pytest.raises(ValueError, match=re.escape("'user..login'")):
            bus.listeners("user..login")


# ---------------------------------------------------------------- good values


class TestGoodNames:
    @pytest.mark.parametrize("value", VALID_NAMES)
    @pytest.mark.parametrize("entry_point", ENTRY_POINTS)
    def test_valid_name_accepted(self, bus: EventBus, entry_point: str, value: str) -> None:
        """Valid name is accepted everywhere."""
        ENTRY_POINTS[entry_point](bus, value)

    @pytest.mark.parametrize("value", VALID_PATTERNS)
    @pytest.mark.parametrize("entry_point", PATTERN_ENTRY_POINTS)
    def test_pattern_accepted(self, bus: EventBus, entry_point: str, value: str) -> None:
        """Pattern is accepted where patterns are allowed."""
        PATTERN_ENTRY_POINTS[entry_point](bus, value)

    @pytest.mark.parametrize("value", VALID_NAMES)
    async def test_emission_valid_names(self, bus: EventBus, emit: Emitter, value: str) -> None:
        """Emission accepts valid names."""
        seen: list[str] = []
        bus.on(value, lambda event: seen.append(event.name))

        await emit(bus, value)

        assert seen == [value]

    @given(st.text(alphabet="ab_-.*Z9 é\n", max_size=12))
    def test_name_grammar(self, text: str) -> None:
        """A name is accepted exactly when it follows the grammar."""
        bus = EventBus("hypothesis")
        if NAME_RE.fullmatch(text):
            assert Event(text).name == text
            assert bus.emit_sync(text).event.name == text
        else:
            with pytest.raises(ValueError, match=re.escape(repr(text))):
                Event(text)
            with pytest.raises(ValueError, match=re.escape(repr(text))):
                bus.emit_sync(text)

    @given(st.text(alphabet="ab_-.*Z9 é\n", max_size=12))
    def test_key_grammar(self, text: str) -> None:
        """A subscription key is accepted exactly when it is a name or a pattern."""
        bus = EventBus("hypothesis")
        if NAME_RE.fullmatch(text) or PATTERN_RE.fullmatch(text):
            bus.on(text, _noop)
            assert bus.topics() == (text,)
        else:
            with pytest.raises(ValueError, match=re.escape(repr(text))):
                bus.on(text, _noop)
            assert bus.topics() == ()


# ---------------------------------------------------------------- matching


def _receiver(bus: EventBus, key: str) -> list[str]:
    received: list[str] = []
    bus.on(key, lambda event: received.append(event.name))
    return received


class TestMatching:
    @pytest.mark.parametrize(
        ("key", "name", "expected"),
        [
            ("user.*", "user.login", True),
            ("user.*", "user.profile.updated", True),
            ("user.*", "user.a.b.c.d", True),
            ("user.*", "user", False),
            ("user.*", "username.x", False),
            ("user.*", "username", False),
            ("user.*", "users.login", False),
            ("user.*", "user_x.login", False),
            ("user.*", "user-x.login", False),
            ("user.*", "other.user.login", False),
            ("user.*", "User.login", False),
            ("user.profile.*", "user.profile.updated", True),
            ("user.profile.*", "user.profile.a.b", True),
            ("user.profile.*", "user.profile", False),
            ("user.profile.*", "user.login", False),
            ("user.profile.*", "user.profiles.x", False),
            ("*", "user", True),
            ("*", "user.login", True),
            ("*", "a.b.c.d.e", True),
            ("*", "-", True),
            ("user", "user", True),
            ("user", "user.login", False),
            ("user.login", "user.login", True),
            ("user.login", "user.login.failed", False),
            ("user.login", "user", False),
        ],
    )
    def test_key_matching_only(self, bus: EventBus, key: str, name: str, expected: bool) -> None:
        """Subscription key receives matching names only."""
        received = _receiver(bus, key)

        bus.emit_sync(name)

        assert received == ([name] if expected else [])

    async def test_pattern_below(self, bus: EventBus) -> None:
        """Pattern subscription receives every event below it."""
        received = _receiver(bus, "user.*")

        for name in ["user.login", "user", "user.profile.updated", "username.x", "order.paid"]:
            await bus.emit(name)

        assert received == ["user.login", "user.profile.updated"]

    async def test_star_receives_all(self, bus: EventBus) -> None:
        """Star receives every event."""
        received = _receiver(bus, "*")
        names = ["user", "user.login", "order.paid", "a.b.c.d", "X-1_y"]

        for name in names:
            await bus.emit(name)

        assert received == names

    async def test_concrete_name_received(self, bus: EventBus) -> None:
        """Handler receives the concrete name not the pattern."""
        events: list[Event] = []
        bus.on("user.*", events.append)

        report = await bus.emit("user.login")

        assert events[0].name == "user.login"
        assert report.results[0].handler.pattern == "user.*"


# ---------------------------------------------------------------- str subclasses as names


class Events(enum.StrEnum):
    SALE_CLOSED = "sale.closed"


class TestStrEnumNames:
    async def test_event_name(self, bus: EventBus, emit: Emitter) -> None:
        """A str enum as a name gives a plain str event name.

        Regression: a str subclass used as a name was kept as is in event.name.
        """
        names: list[object] = []
        bus.on(Events.SALE_CLOSED, lambda event: names.append(event.name))

        report = await emit(bus, Events.SALE_CLOSED)

        assert names == ["sale.closed"]
        assert type(names[0]) is str
        assert type(report.event.name) is str

    def test_topics(self, bus: EventBus) -> None:
        """Str enum subscription key is a plain str in topics.

        Regression: a str subclass used as a name was kept as is in topics().
        """
        bus.on(Events.SALE_CLOSED, _noop)

        topics = bus.topics()

        assert topics == ("sale.closed",)
        assert type(topics[0]) is str

    def test_describe(self, bus: EventBus) -> None:
        """Str enum subscription key is a plain str in describe.

        Regression: a str subclass used as a name was kept as is in describe().
        """
        bus.on(Events.SALE_CLOSED, _noop)

        (entry,) = bus.describe()

        assert entry["topic"] == "sale.closed"
        assert type(entry["topic"]) is str

    def test_recorder(self, bus: EventBus) -> None:
        """Str enum name is a plain str in the recorders names.

        Regression: a str subclass used as a name was kept as is in Recorder.names.
        """
        with bus.record() as recorder:
            bus.emit_sync(Events.SALE_CLOSED)

        assert recorder.names == ["sale.closed"]
        assert type(recorder.names[0]) is str

    def test_same_handlers(self, bus: EventBus) -> None:
        """Str enum and plain str names reach the same handlers."""
        received: list[str] = []
        bus.on(Events.SALE_CLOSED, lambda event: received.append("enum key"))
        bus.on("sale.closed", lambda event: received.append("str key"))

        bus.emit_sync("sale.closed")
        bus.emit_sync(Events.SALE_CLOSED)

        assert received == ["enum key", "str key", "enum key", "str key"]
