"""listeners / listener_count / has_listeners / topics / describe / record / muted,
HandlerInfo, and strict mode never raising UnknownEventError from introspection."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
from emitters import Emitter

from eventbus import Event, EventBus, HandlerInfo, PayloadError, Recorder

MODULE = __name__


def handler_a(event: Event) -> str:
    return "a"


def handler_b(event: Event) -> str:
    return "b"


def handler_c(event: Event) -> str:
    return "c"


async def async_handler(event: Event) -> str:
    return "async"


def labelled(label: str, event: Event) -> str:
    return label


class Service:
    def on_event(self, event: Event) -> str:
        return "service"

    async def on_event_async(self, event: Event) -> str:
        return "service async"


class CallableHandler:
    def __call__(self, event: Event) -> str:
        return "callable"


class AsyncCallableHandler:
    async def __call__(self, event: Event) -> str:
        return "async callable"


def _keys(infos: tuple[HandlerInfo, ...]) -> list[tuple[str, Callable[..., Any] | None]]:
    return [(info.pattern, info.callback) for info in infos]


def _recording(calls: list[str], label: str) -> Callable[[Event], None]:
    def handler(event: Event) -> None:
        calls.append(f"{label}:{event.name}")

    return handler


# ---------------------------------------------------------------- listeners


@pytest.fixture
def wide(bus: EventBus) -> EventBus:
    """Subscriptions under, over, beside and outside ``user.*``."""
    for key in [
        "user.login",
        "user.profile.updated",
        "user.*",
        "user.profile.*",
        "*",
        "user",
        "username.x",
        "users.*",
        "order.paid",
        "order.*",
    ]:
        bus.on(key, handler_a)
    return bus


class TestListeners:
    def test_unknown_name(self, bus: EventBus) -> None:
        """Listeners of an unknown name is empty."""
        assert bus.listeners("nothing.here") == ()

    def test_dispatch_order(self, bus: EventBus) -> None:
        """Listeners are in dispatch order."""
        bus.on("a", handler_a)
        bus.on("*", handler_b, priority=5)
        bus.on("a", handler_c, priority=5)
        bus.on("a", async_handler, priority=-1)

        assert _keys(bus.listeners("a")) == [
            ("*", handler_b),
            ("a", handler_c),
            ("a", handler_a),
            ("a", async_handler),
        ]

    def test_run_order(self, bus: EventBus) -> None:
        """Listeners order matches the order handlers run in."""
        calls: list[str] = []
        bus.on("user.*", _recording(calls, "pattern"), priority=2)
        bus.on("user.login", _recording(calls, "exact"), priority=2)
        bus.on("*", _recording(calls, "star"), priority=3)
        bus.on("user.login", _recording(calls, "low"), priority=-3)

        listed = [info.callback for info in bus.listeners("user.login")]
        report = bus.emit_sync("user.login")

        assert [result.handler.callback for result in report.results] == listed
        assert calls == [
            "star:user.login",
            "pattern:user.login",
            "exact:user.login",
            "low:user.login",
        ]

    def test_include_patterns(self, bus: EventBus) -> None:
        """Listeners of a name include patterns matching it."""
        bus.on("user.login", handler_a)
        bus.on("user.*", handler_b)
        bus.on("*", handler_c)
        bus.on("user", handler_a)
        bus.on("user.login.failed", handler_a)
        bus.on("order.*", handler_a)

        assert _keys(bus.listeners("user.login")) == [
            ("user.login", handler_a),
            ("user.*", handler_b),
            ("*", handler_c),
        ]

    def test_of_pattern(self, wide: EventBus) -> None:
        """listeners of a pattern lists everything that could receive a match."""
        assert [info.pattern for info in wide.listeners("user.*")] == [
            "user.login",
            "user.profile.updated",
            "user.*",
            "user.profile.*",
            "*",
        ]

    def test_narrower_pattern(self, wide: EventBus) -> None:
        """Listeners of a narrower pattern include broader overlapping ones."""
        assert [info.pattern for info in wide.listeners("user.profile.*")] == [
            "user.profile.updated",
            "user.*",
            "user.profile.*",
            "*",
        ]

    def test_of_star(self, wide: EventBus) -> None:
        """Listeners of star lists every subscription."""
        assert len(wide.listeners("*")) == wide.listener_count() == 10

    def test_pattern_order(self, bus: EventBus) -> None:
        """Listeners of a pattern are in dispatch order."""
        bus.on("user.login", handler_a)
        bus.on("*", handler_b, priority=-1)
        bus.on("user.profile.updated", handler_c, priority=4)
        bus.on("user.*", handler_a, priority=4)

        assert [(info.pattern, info.priority) for info in bus.listeners("user.*")] == [
            ("user.profile.updated", 4),
            ("user.*", 4),
            ("user.login", 0),
            ("*", -1),
        ]

    def test_no_overlap(self, wide: EventBus) -> None:
        """Listeners of a pattern with no overlap is empty."""
        wide.clear("*")

        assert wide.listeners("account.*") == ()


# ---------------------------------------------------------------- HandlerInfo


class TestHandlerInfo:
    @pytest.mark.parametrize(
        ("make", "expected"),
        [
            (lambda: handler_a, f"{MODULE}.handler_a"),
            (lambda: async_handler, f"{MODULE}.async_handler"),
            (lambda: Service().on_event, f"{MODULE}.Service.on_event"),
            (lambda: CallableHandler(), f"{MODULE}.CallableHandler"),
            (lambda: functools.partial(labelled, "x"), f"{MODULE}.labelled"),
        ],
        ids=["function", "async function", "bound method", "callable object", "partial"],
    )
    def test_name(
        self, bus: EventBus, make: Callable[[], Callable[[Event], Any]], expected: str
    ) -> None:
        """HandlerInfo name is module and qualname."""
        handler = make()
        bus.on("a", handler)

        assert bus.listeners("a")[0].name == expected

    def test_name_nested(self, bus: EventBus) -> None:
        """HandlerInfo name of a nested function uses its qualname."""

        def nested(event: Event) -> None:
            return None

        bus.on("a", nested)

        assert bus.listeners("a")[0].name == (
            f"{MODULE}.TestHandlerInfo.test_name_nested.<locals>.nested"
        )

    def test_options(self, bus: EventBus) -> None:
        """HandlerInfo reflects the subscription options."""
        service = Service()

        bus.on(
            "user.*",
            service.on_event,
            priority=3,
            once=True,
            predicate=bool,
            timeout=2,
            owner="auth",
        )
        (info,) = bus.listeners("user.login")

        assert info.pattern == "user.*"
        assert info.priority == 3
        assert info.once is True
        assert info.weak is True
        assert info.timeout == 2
        assert info.has_predicate is True
        assert info.owner == "auth"
        assert info.callback == service.on_event
        assert info.is_async is False

    def test_defaults(self, bus: EventBus) -> None:
        """HandlerInfo's defaults."""
        bus.on("a", handler_a)
        (info,) = bus.listeners("a")

        assert (info.pattern, info.priority, info.once, info.weak) == ("a", 0, False, False)
        assert (info.timeout, info.has_predicate, info.owner) == (None, False, None)
        assert info.callback is handler_a

    @pytest.mark.parametrize(
        ("make", "is_async"),
        [
            (lambda: handler_a, False),
            (lambda: async_handler, True),
            (lambda: Service().on_event, False),
            (lambda: Service().on_event_async, True),
            (lambda: CallableHandler(), False),
            (lambda: AsyncCallableHandler(), True),
        ],
        ids=["function", "async function", "method", "async method", "callable", "async callable"],
    )
    def test_is_async(
        self, bus: EventBus, make: Callable[[], Callable[[Event], Any]], is_async: bool
    ) -> None:
        """HandlerInfo tells whether the handler ``is_async``."""
        handler = make()
        bus.on("a", handler)

        assert bus.listeners("a")[0].is_async is is_async

    def test_bus_timeout(self) -> None:
        """HandlerInfo timeout falls back to the bus ``handler_timeout``."""
        bus = EventBus("timeouts", handler_timeout=2.5)
        bus.on("a", handler_a)
        bus.on("a", handler_b, timeout=0.5)

        assert [info.timeout for info in bus.listeners("a")] == [2.5, 0.5]

    def test_order(self, bus: EventBus) -> None:
        """HandlerInfo order grows with subscription order."""
        bus.on("b", handler_a, priority=-1)
        bus.on("a", handler_b, priority=9)
        bus.on("*", handler_c)

        by_subscription = sorted(bus.listeners("*"), key=lambda info: info.order)

        assert [info.callback for info in by_subscription] == [handler_a, handler_b, handler_c]

    @pytest.mark.parametrize(
        "attribute", ["name", "pattern", "priority", "once", "weak", "timeout", "owner", "callback"]
    )
    def test_read_only(self, bus: EventBus, attribute: str) -> None:
        """HandlerInfo is read-only."""
        bus.on("a", handler_a, owner="x")
        (info,) = bus.listeners("a")

        with pytest.raises(AttributeError):
            setattr(info, attribute, None)

        assert bus.listeners("a")[0].owner == "x"
        assert bus.listeners("a")[0].callback is handler_a

    def test_in_report(self, bus: EventBus) -> None:
        """HandlerInfo in a report matches listeners."""
        bus.on("a", handler_a, owner="mod", priority=2)

        (result,) = bus.emit_sync("a").results
        (info,) = bus.listeners("a")

        assert (result.handler.name, result.handler.owner, result.handler.priority) == (
            info.name,
            info.owner,
            info.priority,
        )


# ---------------------------------------------------------------- listener_count


class TestListenerCount:
    def test_empty_bus(self, bus: EventBus) -> None:
        """``listener_count`` of an empty bus is zero."""
        assert bus.listener_count() == 0
        assert bus.listener_count("a") == 0

    def test_all(self, bus: EventBus) -> None:
        """``listener_count`` without name counts every subscription."""
        bus.on("a", handler_a)
        bus.on("a", handler_b)
        bus.on("*", handler_a)
        bus.on("b.*", handler_c)

        assert bus.listener_count() == 4
        assert bus.listener_count(None) == 4

    def test_of_name(self, wide: EventBus) -> None:
        """``listener_count`` of a name counts what would receive it."""
        assert wide.listener_count("user.login") == 3  # user.login, user.*, *
        assert wide.listener_count("user") == 2  # user, *
        assert wide.listener_count("user.*") == 5
        assert wide.listener_count("nobody") == 1  # *

    def test_is_listeners(self, wide: EventBus) -> None:
        """``listener_count`` equals the number of listeners."""
        for key in ["user.login", "user.*", "order.*", "users.x", "*", "user.profile.*"]:
            assert wide.listener_count(key) == len(wide.listeners(key)), key

    def test_drops(self, bus: EventBus) -> None:
        """``listener_count`` drops after off clear and once."""
        bus.on("a", handler_a)
        bus.on("a", handler_b)
        bus.once("a", handler_c)
        bus.on("b", handler_a)

        bus.emit_sync("a")
        assert bus.listener_count() == 3
        bus.off("a", handler_a)
        assert bus.listener_count("a") == 1
        bus.clear("b")
        assert bus.listener_count() == 1


# ---------------------------------------------------------------- has_listeners


class TestHasListeners:
    def test_empty(self, bus: EventBus) -> None:
        """Has listeners is false on an empty bus."""
        assert not bus.has_listeners("a")
        assert not bus.has_listeners("*")
        assert not bus.has_listeners("a.*")

    @pytest.mark.parametrize(
        ("key", "query", "expected"),
        [
            ("a", "a", True),
            ("a", "b", False),
            ("user.*", "user.login", True),
            ("user.*", "user", False),
            ("user.*", "username.x", False),
            ("*", "anything.at.all", True),
            ("user.login", "user.*", True),
            ("user.login", "*", True),
            ("user", "user.*", False),
            ("username.x", "user.*", False),
            ("user.*", "user.profile.*", True),
            ("user.profile.*", "user.*", True),
            ("*", "user.*", True),
            ("order.*", "user.*", False),
        ],
    )
    def test_patterns(self, bus: EventBus, key: str, query: str, expected: bool) -> None:
        """Has listeners accepts names and patterns."""
        bus.on(key, handler_a)

        assert bus.has_listeners(query) is expected

    def test_after_off(self, bus: EventBus) -> None:
        """Has listeners is false after unsubscribe."""
        bus.on("a", handler_a)
        assert bus.has_listeners("a")

        bus.off("a", handler_a)

        assert not bus.has_listeners("a")
        assert not bus.has_listeners("*")

    def test_after_clear(self, bus: EventBus) -> None:
        """Has listeners is false after clear."""
        bus.on("user.*", handler_a)
        bus.emit_sync("user.login")
        assert bus.has_listeners("user.login")

        bus.clear()

        assert not bus.has_listeners("user.login")
        assert not bus.has_listeners("user.*")

    def test_after_once(self, bus: EventBus) -> None:
        """Has listeners is false after a once handler ran."""
        bus.once("a", handler_a)

        bus.emit_sync("a")

        assert not bus.has_listeners("a")

    def test_fresh(self, bus: EventBus) -> None:
        """Has listeners sees subscriptions made after an earlier answer."""
        assert not bus.has_listeners("a")
        bus.emit_sync("a")

        bus.on("*", handler_a)

        assert bus.has_listeners("a")


# ---------------------------------------------------------------- topics


class TestTopics:
    def test_empty(self, bus: EventBus) -> None:
        """Topics of an empty bus is empty."""
        assert bus.topics() == ()

    def test_sorted_once(self, bus: EventBus) -> None:
        """Topics lists names and patterns sorted once each."""
        bus.on("user.login", handler_a)
        bus.on("order.*", handler_a)
        bus.on("user.login", handler_b)
        bus.on("*", handler_a)
        bus.on("audit", handler_a)

        assert bus.topics() == ("*", "audit", "order.*", "user.login")
        assert isinstance(bus.topics(), tuple)

    def test_topic_disappears(self, bus: EventBus) -> None:
        """Topic disappears with its last subscription."""
        bus.on("a", handler_a)
        bus.on("a", handler_b)
        bus.once("b", handler_a)

        bus.off("a", handler_a)
        assert bus.topics() == ("a", "b")
        bus.off("a", handler_b)
        assert bus.topics() == ("b",)
        bus.emit_sync("b")
        assert bus.topics() == ()


# ---------------------------------------------------------------- describe


class TestDescribe:
    def test_empty(self, bus: EventBus) -> None:
        """Describe of an empty bus is an empty list."""
        assert bus.describe() == []

    def test_shows_topics(self) -> None:
        """Describe shows topics and their handlers."""
        bus = EventBus("described", handler_timeout=5)
        service = Service()
        bus.on("user.login", handler_b, priority=-1)
        bus.on("user.login", service.on_event, priority=3, owner="auth")
        bus.once("*", handler_a, predicate=bool, timeout=0.5)

        assert bus.describe() == [
            {
                "topic": "*",
                "declared": False,
                "handlers": [
                    {
                        "name": f"{MODULE}.handler_a",
                        "priority": 0,
                        "once": True,
                        "weak": False,
                        "timeout": 0.5,
                        "has_predicate": True,
                        "owner": None,
                    }
                ],
            },
            {
                "topic": "user.login",
                "declared": False,
                "handlers": [
                    {
                        "name": f"{MODULE}.handler_b",
                        "priority": -1,
                        "once": False,
                        "weak": False,
                        "timeout": 5,
                        "has_predicate": False,
                        "owner": None,
                    },
                    {
                        "name": f"{MODULE}.Service.on_event",
                        "priority": 3,
                        "once": False,
                        "weak": True,
                        "timeout": 5,
                        "has_predicate": False,
                        "owner": "auth",
                    },
                ],
            },
        ]

    def test_json(self, bus: EventBus) -> None:
        """Describe is json serialisable."""
        bus.declare("user.login", description="a user logged in", payload={"user_id": int})
        bus.on("user.login", Service().on_event, timeout=1.5, owner="x")
        bus.on("user.*", functools.partial(labelled, "p"), predicate=lambda event: True)
        bus.on("*", CallableHandler(), once=True)

        described = bus.describe()

        assert json.loads(json.dumps(described)) == described

    def test_sorted(self, bus: EventBus) -> None:
        """Describe is sorted by topic."""
        for key in ["zeta", "alpha.*", "*", "Beta", "alpha", "alpha.b"]:
            bus.on(key, handler_a)

        assert [entry["topic"] for entry in bus.describe()] == sorted(
            ["zeta", "alpha.*", "*", "Beta", "alpha", "alpha.b"]
        )

    def test_handler_order(self, bus: EventBus) -> None:
        """Describe lists handlers in subscription order."""
        bus.on("a", handler_a, priority=-5)
        bus.on("a", handler_b, priority=5)
        bus.on("a", handler_c)

        (entry,) = bus.describe()

        assert [handler["name"] for handler in entry["handlers"]] == [
            f"{MODULE}.handler_a",
            f"{MODULE}.handler_b",
            f"{MODULE}.handler_c",
        ]

    def test_declared(self, bus: EventBus) -> None:
        """Describe tells which topics are declared."""
        bus.declare("user.login")
        bus.on("user.login", handler_a)
        bus.on("user.logout", handler_a)

        assert [(entry["topic"], entry["declared"]) for entry in bus.describe()] == [
            ("user.login", True),
            ("user.logout", False),
        ]

    def test_fresh_copy(self, bus: EventBus) -> None:
        """Describe returns a fresh copy."""
        bus.on("a", handler_a)
        described = bus.describe()

        described[0]["handlers"].clear()
        described.clear()

        assert len(bus.describe()[0]["handlers"]) == 1


# ---------------------------------------------------------------- record


class TestRecord:
    def test_yields_recorder(self, bus: EventBus) -> None:
        """Record yields a recorder."""
        with bus.record() as recorder:
            assert isinstance(recorder, Recorder)
            assert recorder.events == []
            assert recorder.names == []

    async def test_keeps_events(self, bus: EventBus) -> None:
        """Record keeps the events handlers received."""
        received: list[Event] = []
        bus.on("a", received.append)

        with bus.record() as recorder:
            report = await bus.emit("a", k=1, source="src")

        assert recorder.events == [report.event]
        assert recorder.events[0] is received[0]
        assert recorder.events[0]["k"] == 1
        assert recorder.events[0].source == "src"

    async def test_unheard(self, bus: EventBus) -> None:
        """Record records emissions nobody listens to."""
        with bus.record() as recorder:
            await bus.emit("nobody.listens")
            bus.emit_sync("still.nobody")

        assert recorder.names == ["nobody.listens", "still.nobody"]

    async def test_every_mode(self, bus: EventBus, emit: Emitter) -> None:
        """Record records emit ``emit_sync`` and publish."""
        with bus.record() as recorder:
            await emit(bus, "one")
            await emit(bus, "two")

        assert recorder.names == ["one", "two"]

    async def test_muted(self, bus: EventBus) -> None:
        """Record records muted emissions."""
        calls: list[str] = []
        bus.on("a", _recording(calls, "h"))

        with bus.record() as recorder, bus.muted("a"):
            await bus.emit("a")

        assert recorder.names == ["a"]
        assert calls == []

    async def test_failures(self, bus: EventBus) -> None:
        """Record records emissions whose handlers fail."""

        def broken(event: Event) -> None:
            raise RuntimeError("boom")

        bus.on("a", broken)

        with bus.record() as recorder:
            report = await bus.emit("a")

        assert not report.ok
        assert recorder.names == ["a"]

    def test_count_and_names(self, bus: EventBus) -> None:
        """record's count and names."""
        with bus.record() as recorder:
            for name in ["a", "b", "a", "a.b", "a"]:
                bus.emit_sync(name)

        assert recorder.names == ["a", "b", "a", "a.b", "a"]
        assert recorder.count("a") == 3
        assert recorder.count("b") == 1
        assert recorder.count("a.b") == 1
        assert recorder.count("never") == 0

    def test_recorder_clear(self, bus: EventBus) -> None:
        """Recorder clear forgets but keeps recording."""
        with bus.record() as recorder:
            bus.emit_sync("before")
            recorder.clear()
            assert recorder.events == []
            assert recorder.count("before") == 0
            bus.emit_sync("after")

        assert recorder.names == ["after"]

    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [
            ("*", ["user", "user.login", "user.profile.updated", "username.x", "order.paid"]),
            ("user.*", ["user.login", "user.profile.updated"]),
            ("user.profile.*", ["user.profile.updated"]),
            ("user", ["user"]),
            ("order.paid", ["order.paid"]),
            ("nothing.*", []),
        ],
    )
    def test_pattern(self, bus: EventBus, pattern: str, expected: list[str]) -> None:
        """Record keeps only emissions matching its pattern."""
        with bus.record(pattern) as recorder:
            for name in ["user", "user.login", "user.profile.updated", "username.x", "order.paid"]:
                bus.emit_sync(name)

        assert recorder.names == expected

    async def test_nested(self, bus: EventBus) -> None:
        """Record records nested emissions."""

        async def emit_b(event: Event) -> None:
            await bus.emit("b")

        def emit_c(event: Event) -> None:
            bus.emit_sync("c")

        bus.on("a", emit_b)
        bus.on("b", emit_c)

        with bus.record() as recorder:
            await bus.emit("a")

        assert recorder.names == ["a", "b", "c"]
        a, b, c = recorder.events
        assert (a.depth, b.depth, c.depth) == (0, 1, 2)
        assert b.parent_id == a.id
        assert c.parent_id == b.id

    def test_stops_after(self, bus: EventBus) -> None:
        """Record stops recording after the block."""
        with bus.record() as recorder:
            bus.emit_sync("inside")
        bus.emit_sync("outside")

        assert recorder.names == ["inside"]

    def test_stops_on_raise(self, bus: EventBus) -> None:
        """Record stops recording when the block raises."""
        recorders: list[Recorder] = []

        def block() -> None:
            with bus.record() as recorder:
                recorders.append(recorder)
                bus.emit_sync("inside")
                raise RuntimeError("in block")

        with pytest.raises(RuntimeError, match="in block"):
            block()
        bus.emit_sync("outside")

        (recorder,) = recorders

        assert recorder.names == ["inside"]

    def test_blocks_nest(self, bus: EventBus) -> None:
        """Record blocks can nest."""
        with bus.record() as outer:
            bus.emit_sync("first")
            with bus.record("x.*") as inner:
                bus.emit_sync("x.one")
                bus.emit_sync("second")
            bus.emit_sync("x.two")

        assert outer.names == ["first", "x.one", "second", "x.two"]
        assert inner.names == ["x.one"]

    def test_skips_refused(self, bus: EventBus) -> None:
        """Record does not record an emission refused before it ran."""
        bus.declare("paid", payload={"amount": int})

        with bus.record() as recorder:
            with pytest.raises(PayloadError, match="amount"):
                bus.emit_sync("paid", amount="12")
            bus.emit_sync("paid", amount=12)

        assert recorder.names == ["paid"]
        assert recorder.events[0]["amount"] == 12


# ---------------------------------------------------------------- muted


@pytest.fixture
def calls(bus: EventBus) -> list[str]:
    made: list[str] = []
    for key in ["a", "b", "user.login", "user", "*"]:
        bus.on(key, _recording(made, key))
    return made


class TestMuted:
    async def test_name(self, bus: EventBus, emit: Emitter, calls: list[str]) -> None:
        """A muted name runs no handler and reports no results; other names still run."""
        with bus.muted("a"):
            report = await emit(bus, "a", k=1)
            await emit(bus, "b")

        assert report.results == ()
        assert report.errors == ()
        assert report.values == ()
        assert report.ok
        assert report.event.name == "a"
        assert report.event["k"] == 1
        assert calls == ["b:b", "*:b"]

    def test_pattern(self, bus: EventBus, calls: list[str]) -> None:
        """Muted pattern mutes names below it."""
        with bus.muted("user.*"):
            for name in ["user.login", "user", "a"]:
                bus.emit_sync(name)

        assert calls == ["user:user", "*:user", "a:a", "*:a"]

    def test_everything(self, bus: EventBus, calls: list[str]) -> None:
        """Muted without names mutes everything."""
        with bus.muted():
            for name in ["a", "b", "user.login", "other"]:
                assert bus.emit_sync(name).results == ()

        assert calls == []

    def test_several(self, bus: EventBus, calls: list[str]) -> None:
        """muted with several names mutes each."""
        with bus.muted("a", "user.*"):
            for name in ["a", "b", "user.login"]:
                bus.emit_sync(name)

        assert calls == ["b:b", "*:b"]

    def test_unmuted_after_block(self, bus: EventBus, calls: list[str]) -> None:
        """Handlers run again after the muted block."""
        with bus.muted("a"):
            bus.emit_sync("a")
        bus.emit_sync("a")

        assert calls == ["a:a", "*:a"]

    def test_unmuted_on_raise(self, bus: EventBus, calls: list[str]) -> None:
        """Handlers run again when the muted block raises."""
        with pytest.raises(RuntimeError, match="in block"), bus.muted("a"):
            raise RuntimeError("in block")
        bus.emit_sync("a")

        assert calls == ["a:a", "*:a"]

    def test_nested_same(self, bus: EventBus, calls: list[str]) -> None:
        """Nested muted blocks of one name stack."""
        with bus.muted("a"):
            with bus.muted("a"):
                bus.emit_sync("a")
            bus.emit_sync("a")  # the outer block still mutes it
        bus.emit_sync("a")

        assert calls == ["a:a", "*:a"]

    def test_nested_different(self, bus: EventBus, calls: list[str]) -> None:
        """Nested muted blocks of different names stack."""
        with bus.muted("a"):
            with bus.muted("b"):
                bus.emit_sync("a")
                bus.emit_sync("b")
            bus.emit_sync("a")
            bus.emit_sync("b")

        assert calls == ["b:b", "*:b"]

    def test_all_inside_name(self, bus: EventBus, calls: list[str]) -> None:
        """Nested muted everything inside muted name."""
        with bus.muted("a"):
            with bus.muted():
                bus.emit_sync("b")
            bus.emit_sync("b")
            bus.emit_sync("a")

        assert calls == ["b:b", "*:b"]

    def test_later_handlers(self, bus: EventBus) -> None:
        """Muted applies to handlers subscribed inside the block."""
        made: list[str] = []

        with bus.muted("a"):
            bus.emit_sync("a")  # resolve "a" once while muted
            bus.on("a", _recording(made, "late"))
            bus.emit_sync("a")
        bus.emit_sync("a")

        assert made == ["late:a"]

    def test_keeps_once(self, bus: EventBus) -> None:
        """Once handler is not used up by a muted emission."""
        made: list[str] = []
        bus.once("a", _recording(made, "once"))

        with bus.muted("a"):
            bus.emit_sync("a")
        bus.emit_sync("a")
        bus.emit_sync("a")

        assert made == ["once:a"]

    def test_introspection(self, bus: EventBus) -> None:
        """Muting does not change introspection."""
        bus.on("a", handler_a)
        bus.on("user.*", handler_b)
        before = (bus.listeners("a"), bus.listeners("user.*"), bus.topics(), bus.describe())

        with bus.muted():
            assert bus.has_listeners("a")
            assert bus.has_listeners("user.login")
            assert bus.has_listeners("user.*")
            assert bus.listener_count() == 2
            assert (bus.listeners("a"), bus.listeners("user.*"), bus.topics(), bus.describe()) == (
                before
            )

    async def test_async_in_loop(self, bus: EventBus) -> None:
        """Muted emission of async handlers is allowed from ``emit_sync`` in a loop."""

        async def handler(event: Event) -> None:
            raise AssertionError("muted handler ran")

        bus.on("a", handler)

        with bus.muted("a"):
            report = bus.emit_sync("a")

        assert report.results == ()


# ---------------------------------------------------------------- strict mode


@pytest.fixture
def strict() -> EventBus:
    bus = EventBus("strict", strict=True)
    bus.declare("user.login")
    bus.on("user.login", handler_a)
    return bus


class TestStrictIntrospection:
    @pytest.mark.parametrize("query", ["undeclared", "undeclared.*", "user.logn"])
    def test_undeclared_quiet(self, strict: EventBus, query: str) -> None:
        """Strict introspection of undeclared names does not raise."""
        assert strict.off(query, handler_a) is False
        assert strict.listeners(query) == ()
        assert strict.listener_count(query) == 0
        assert strict.has_listeners(query) is False
        with strict.record(query) as recorder:
            strict.emit_sync("user.login")
        assert recorder.names == []
        with strict.muted(query):
            assert len(strict.emit_sync("user.login").results) == 1

    def test_summaries_quiet(self, strict: EventBus) -> None:
        """Strict topics describe and counts do not raise."""
        assert strict.topics() == ("user.login",)
        assert strict.describe()[0]["declared"] is True
        assert strict.listener_count() == 1

    def test_declared_works(self, strict: EventBus) -> None:
        """Strict introspection of declared names works."""
        assert strict.has_listeners("user.login")
        assert strict.has_listeners("user.*")
        assert strict.has_listeners("*")
        assert [info.callback for info in strict.listeners("user.login")] == [handler_a]
        assert strict.listener_count("user.*") == 1
