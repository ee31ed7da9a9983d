"""listeners / listener_count / has_listeners / topics / describe / record / muted,
HandlerInfo, and strict mode never raising UnknownEventError from introspection."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pytest

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


def test_listeners_of_an_unknown_name_is_empty(bus: EventBus) -> None:
    assert bus.listeners("nothing.here") == ()


def test_listeners_are_in_dispatch_order(bus: EventBus) -> None:
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


def test_listeners_order_matches_the_order_handlers_run_in(bus: EventBus) -> None:
    calls: list[str] = []
    bus.on("user.*", _recording(calls, "pattern"), priority=2)
    bus.on("user.login", _recording(calls, "exact"), priority=2)
    bus.on("*", _recording(calls, "star"), priority=3)
    bus.on("user.login", _recording(calls, "low"), priority=-3)

    listed = [info.callback for info in bus.listeners("user.login")]
    report = bus.emit_sync("user.login")

    assert [result.handler.callback for result in report.results] == listed
    assert calls == ["star:user.login", "pattern:user.login", "exact:user.login", "low:user.login"]


def test_listeners_of_a_name_include_patterns_matching_it(bus: EventBus) -> None:
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


def test_listeners_of_a_pattern_lists_everything_that_could_receive_a_match(
    wide: EventBus,
) -> None:
    assert [info.pattern for info in wide.listeners("user.*")] == [
        "user.login",
        "user.profile.updated",
        "user.*",
        "user.profile.*",
        "*",
    ]


def test_listeners_of_a_narrower_pattern_include_broader_overlapping_ones(wide: EventBus) -> None:
    assert [info.pattern for info in wide.listeners("user.profile.*")] == [
        "user.profile.updated",
        "user.*",
        "user.profile.*",
        "*",
    ]


def test_listeners_of_star_lists_every_subscription(wide: EventBus) -> None:
    assert len(wide.listeners("*")) == wide.listener_count() == 10


def test_listeners_of_a_pattern_are_in_dispatch_order(bus: EventBus) -> None:
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


def test_listeners_of_a_pattern_with_no_overlap_is_empty(wide: EventBus) -> None:
    wide.clear("*")

    assert wide.listeners("account.*") == ()


# ---------------------------------------------------------------- HandlerInfo


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
def test_handler_info_name_is_module_and_qualname(
    bus: EventBus, make: Callable[[], Callable[[Event], Any]], expected: str
) -> None:
    handler = make()
    bus.on("a", handler)

    assert bus.listeners("a")[0].name == expected


def test_handler_info_name_of_a_nested_function_uses_its_qualname(bus: EventBus) -> None:
    def nested(event: Event) -> None:
        return None

    bus.on("a", nested)

    assert bus.listeners("a")[0].name == (
        f"{MODULE}.test_handler_info_name_of_a_nested_function_uses_its_qualname.<locals>.nested"
    )


def test_handler_info_reflects_the_subscription_options(bus: EventBus) -> None:
    service = Service()

    bus.on(
        "user.*", service.on_event, priority=3, once=True, predicate=bool, timeout=2, owner="auth"
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


def test_handler_info_defaults(bus: EventBus) -> None:
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
def test_handler_info_tells_whether_the_handler_is_async(
    bus: EventBus, make: Callable[[], Callable[[Event], Any]], is_async: bool
) -> None:
    handler = make()
    bus.on("a", handler)

    assert bus.listeners("a")[0].is_async is is_async


def test_handler_info_timeout_falls_back_to_the_bus_handler_timeout() -> None:
    bus = EventBus("timeouts", handler_timeout=2.5)
    bus.on("a", handler_a)
    bus.on("a", handler_b, timeout=0.5)

    assert [info.timeout for info in bus.listeners("a")] == [2.5, 0.5]


def test_handler_info_order_grows_with_subscription_order(bus: EventBus) -> None:
    bus.on("b", handler_a, priority=-1)
    bus.on("a", handler_b, priority=9)
    bus.on("*", handler_c)

    by_subscription = sorted(bus.listeners("*"), key=lambda info: info.order)

    assert [info.callback for info in by_subscription] == [handler_a, handler_b, handler_c]


@pytest.mark.parametrize(
    "attribute", ["name", "pattern", "priority", "once", "weak", "timeout", "owner", "callback"]
)
def test_handler_info_is_read_only(bus: EventBus, attribute: str) -> None:
    bus.on("a", handler_a, owner="x")
    (info,) = bus.listeners("a")

    with pytest.raises(AttributeError):
        setattr(info, attribute, None)

    assert bus.listeners("a")[0].owner == "x"
    assert bus.listeners("a")[0].callback is handler_a


def test_handler_info_in_a_report_matches_listeners(bus: EventBus) -> None:
    bus.on("a", handler_a, owner="mod", priority=2)

    (result,) = bus.emit_sync("a").results
    (info,) = bus.listeners("a")

    assert (result.handler.name, result.handler.owner, result.handler.priority) == (
        info.name,
        info.owner,
        info.priority,
    )


# ---------------------------------------------------------------- listener_count


def test_listener_count_of_an_empty_bus_is_zero(bus: EventBus) -> None:
    assert bus.listener_count() == 0
    assert bus.listener_count("a") == 0


def test_listener_count_without_name_counts_every_subscription(bus: EventBus) -> None:
    bus.on("a", handler_a)
    bus.on("a", handler_b)
    bus.on("*", handler_a)
    bus.on("b.*", handler_c)

    assert bus.listener_count() == 4
    assert bus.listener_count(None) == 4


def test_listener_count_of_a_name_counts_what_would_receive_it(wide: EventBus) -> None:
    assert wide.listener_count("user.login") == 3  # user.login, user.*, *
    assert wide.listener_count("user") == 2  # user, *
    assert wide.listener_count("user.*") == 5
    assert wide.listener_count("nobody") == 1  # *


def test_listener_count_equals_the_number_of_listeners(wide: EventBus) -> None:
    for key in ["user.login", "user.*", "order.*", "users.x", "*", "user.profile.*"]:
        assert wide.listener_count(key) == len(wide.listeners(key)), key


def test_listener_count_drops_after_off_clear_and_once(bus: EventBus) -> None:
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


def test_has_listeners_is_false_on_an_empty_bus(bus: EventBus) -> None:
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
def test_has_listeners_accepts_names_and_patterns(
    bus: EventBus, key: str, query: str, expected: bool
) -> None:
    bus.on(key, handler_a)

    assert bus.has_listeners(query) is expected


def test_has_listeners_is_false_after_unsubscribe(bus: EventBus) -> None:
    bus.on("a", handler_a)
    assert bus.has_listeners("a")

    bus.off("a", handler_a)

    assert not bus.has_listeners("a")
    assert not bus.has_listeners("*")


def test_has_listeners_is_false_after_clear(bus: EventBus) -> None:
    bus.on("user.*", handler_a)
    bus.emit_sync("user.login")
    assert bus.has_listeners("user.login")

    bus.clear()

    assert not bus.has_listeners("user.login")
    assert not bus.has_listeners("user.*")


def test_has_listeners_is_false_after_a_once_handler_ran(bus: EventBus) -> None:
    bus.once("a", handler_a)

    bus.emit_sync("a")

    assert not bus.has_listeners("a")


def test_has_listeners_sees_subscriptions_made_after_an_earlier_answer(bus: EventBus) -> None:
    assert not bus.has_listeners("a")
    bus.emit_sync("a")

    bus.on("*", handler_a)

    assert bus.has_listeners("a")


# ---------------------------------------------------------------- topics


def test_topics_of_an_empty_bus_is_empty(bus: EventBus) -> None:
    assert bus.topics() == ()


def test_topics_lists_names_and_patterns_sorted_once_each(bus: EventBus) -> None:
    bus.on("user.login", handler_a)
    bus.on("order.*", handler_a)
    bus.on("user.login", handler_b)
    bus.on("*", handler_a)
    bus.on("audit", handler_a)

    assert bus.topics() == ("*", "audit", "order.*", "user.login")
    assert isinstance(bus.topics(), tuple)


def test_topic_disappears_with_its_last_subscription(bus: EventBus) -> None:
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


def test_describe_of_an_empty_bus_is_an_empty_list(bus: EventBus) -> None:
    assert bus.describe() == []


def test_describe_shows_topics_and_their_handlers() -> None:
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


def test_describe_is_json_serialisable(bus: EventBus) -> None:
    bus.declare("user.login", description="a user logged in", payload={"user_id": int})
    bus.on("user.login", Service().on_event, timeout=1.5, owner="x")
    bus.on("user.*", functools.partial(labelled, "p"), predicate=lambda event: True)
    bus.on("*", CallableHandler(), once=True)

    described = bus.describe()

    assert json.loads(json.dumps(described)) == described


def test_describe_is_sorted_by_topic(bus: EventBus) -> None:
    for key in ["zeta", "alpha.*", "*", "Beta", "alpha", "alpha.b"]:
        bus.on(key, handler_a)

    assert [entry["topic"] for entry in bus.describe()] == sorted(
        ["zeta", "alpha.*", "*", "Beta", "alpha", "alpha.b"]
    )


def test_describe_lists_handlers_in_subscription_order(bus: EventBus) -> None:
    bus.on("a", handler_a, priority=-5)
    bus.on("a", handler_b, priority=5)
    bus.on("a", handler_c)

    (entry,) = bus.describe()

    assert [handler["name"] for handler in entry["handlers"]] == [
        f"{MODULE}.handler_a",
        f"{MODULE}.handler_b",
        f"{MODULE}.handler_c",
    ]


def test_describe_tells_which_topics_are_declared(bus: EventBus) -> None:
    bus.declare("user.login")
    bus.on("user.login", handler_a)
    bus.on("user.logout", handler_a)

    assert [(entry["topic"], entry["declared"]) for entry in bus.describe()] == [
        ("user.login", True),
        ("user.logout", False),
    ]


def test_describe_returns_a_fresh_copy(bus: EventBus) -> None:
    bus.on("a", handler_a)
    described = bus.describe()

    described[0]["handlers"].clear()
    described.clear()

    assert len(bus.describe()[0]["handlers"]) == 1


# ---------------------------------------------------------------- record


def test_record_yields_a_recorder(bus: EventBus) -> None:
    with bus.record() as recorder:
        assert isinstance(recorder, Recorder)
        assert recorder.events == []
        assert recorder.names == []


async def test_record_keeps_the_events_handlers_received(bus: EventBus) -> None:
    received: list[Event] = []
    bus.on("a", received.append)

    with bus.record() as recorder:
        report = await bus.emit("a", k=1, source="src")

    assert recorder.events == [report.event]
    assert recorder.events[0] is received[0]
    assert recorder.events[0]["k"] == 1
    assert recorder.events[0].source == "src"


async def test_record_records_emissions_nobody_listens_to(bus: EventBus) -> None:
    with bus.record() as recorder:
        await bus.emit("nobody.listens")
        bus.emit_sync("still.nobody")

    assert recorder.names == ["nobody.listens", "still.nobody"]


async def test_record_records_emit_emit_sync_and_publish(bus: EventBus) -> None:
    with bus.record() as recorder:
        await bus.emit("one")
        bus.emit_sync("two")
        await bus.publish("three")

    assert recorder.names == ["one", "two", "three"]


async def test_record_records_muted_emissions(bus: EventBus) -> None:
    calls: list[str] = []
    bus.on("a", _recording(calls, "h"))

    with bus.record() as recorder, bus.muted("a"):
        await bus.emit("a")

    assert recorder.names == ["a"]
    assert calls == []


async def test_record_records_emissions_whose_handlers_fail(bus: EventBus) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.on("a", broken)

    with bus.record() as recorder:
        report = await bus.emit("a")

    assert not report.ok
    assert recorder.names == ["a"]


def test_record_count_and_names(bus: EventBus) -> None:
    with bus.record() as recorder:
        for name in ["a", "b", "a", "a.b", "a"]:
            bus.emit_sync(name)

    assert recorder.names == ["a", "b", "a", "a.b", "a"]
    assert recorder.count("a") == 3
    assert recorder.count("b") == 1
    assert recorder.count("a.b") == 1
    assert recorder.count("never") == 0


def test_recorder_clear_forgets_but_keeps_recording(bus: EventBus) -> None:
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
def test_record_keeps_only_emissions_matching_its_pattern(
    bus: EventBus, pattern: str, expected: list[str]
) -> None:
    with bus.record(pattern) as recorder:
        for name in ["user", "user.login", "user.profile.updated", "username.x", "order.paid"]:
            bus.emit_sync(name)

    assert recorder.names == expected


async def test_record_records_nested_emissions(bus: EventBus) -> None:
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


def test_record_stops_recording_after_the_block(bus: EventBus) -> None:
    with bus.record() as recorder:
        bus.emit_sync("inside")
    bus.emit_sync("outside")

    assert recorder.names == ["inside"]


def test_record_stops_recording_when_the_block_raises(bus: EventBus) -> None:
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


def test_record_blocks_can_nest(bus: EventBus) -> None:
    with bus.record() as outer:
        bus.emit_sync("first")
        with bus.record("x.*") as inner:
            bus.emit_sync("x.one")
            bus.emit_sync("second")
        bus.emit_sync("x.two")

    assert outer.names == ["first", "x.one", "second", "x.two"]
    assert inner.names == ["x.one"]


def test_record_does_not_record_an_emission_refused_before_it_ran(bus: EventBus) -> None:
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


def test_muted_name_runs_no_handler(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a"):
        report = bus.emit_sync("a")
        bus.emit_sync("b")

    assert report.results == ()
    assert report.values == ()
    assert report.ok
    assert calls == ["b:b", "*:b"]


async def test_muted_emit_reports_no_results(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a"):
        report = await bus.emit("a", k=1)

    assert report.results == ()
    assert report.errors == ()
    assert report.event.name == "a"
    assert report.event["k"] == 1
    assert calls == []


async def test_muted_publish_runs_no_handler(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a"):
        report = await bus.publish("a")

    assert report.results == ()
    assert calls == []


def test_muted_pattern_mutes_names_below_it(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("user.*"):
        for name in ["user.login", "user", "a"]:
            bus.emit_sync(name)

    assert calls == ["user:user", "*:user", "a:a", "*:a"]


def test_muted_without_names_mutes_everything(bus: EventBus, calls: list[str]) -> None:
    with bus.muted():
        for name in ["a", "b", "user.login", "other"]:
            assert bus.emit_sync(name).results == ()

    assert calls == []


def test_muted_several_names(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a", "user.*"):
        for name in ["a", "b", "user.login"]:
            bus.emit_sync(name)

    assert calls == ["b:b", "*:b"]


def test_handlers_run_again_after_the_muted_block(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a"):
        bus.emit_sync("a")
    bus.emit_sync("a")

    assert calls == ["a:a", "*:a"]


def test_handlers_run_again_when_the_muted_block_raises(bus: EventBus, calls: list[str]) -> None:
    with pytest.raises(RuntimeError, match="in block"), bus.muted("a"):
        raise RuntimeError("in block")
    bus.emit_sync("a")

    assert calls == ["a:a", "*:a"]


def test_nested_muted_blocks_of_one_name_stack(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a"):
        with bus.muted("a"):
            bus.emit_sync("a")
        bus.emit_sync("a")  # the outer block still mutes it
    bus.emit_sync("a")

    assert calls == ["a:a", "*:a"]


def test_nested_muted_blocks_of_different_names_stack(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a"):
        with bus.muted("b"):
            bus.emit_sync("a")
            bus.emit_sync("b")
        bus.emit_sync("a")
        bus.emit_sync("b")

    assert calls == ["b:b", "*:b"]


def test_nested_muted_everything_inside_muted_name(bus: EventBus, calls: list[str]) -> None:
    with bus.muted("a"):
        with bus.muted():
            bus.emit_sync("b")
        bus.emit_sync("b")
        bus.emit_sync("a")

    assert calls == ["b:b", "*:b"]


def test_muted_applies_to_handlers_subscribed_inside_the_block(bus: EventBus) -> None:
    made: list[str] = []

    with bus.muted("a"):
        bus.emit_sync("a")  # resolve "a" once while muted
        bus.on("a", _recording(made, "late"))
        bus.emit_sync("a")
    bus.emit_sync("a")

    assert made == ["late:a"]


def test_once_handler_is_not_used_up_by_a_muted_emission(bus: EventBus) -> None:
    made: list[str] = []
    bus.once("a", _recording(made, "once"))

    with bus.muted("a"):
        bus.emit_sync("a")
    bus.emit_sync("a")
    bus.emit_sync("a")

    assert made == ["once:a"]


def test_muting_does_not_change_introspection(bus: EventBus) -> None:
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


async def test_muted_emission_of_async_handlers_is_allowed_from_emit_sync_in_a_loop(
    bus: EventBus,
) -> None:
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


@pytest.mark.parametrize("query", ["undeclared", "undeclared.*", "user.logn"])
def test_strict_introspection_of_undeclared_names_does_not_raise(
    strict: EventBus, query: str
) -> None:
    assert strict.off(query, handler_a) is False
    assert strict.listeners(query) == ()
    assert strict.listener_count(query) == 0
    assert strict.has_listeners(query) is False
    with strict.record(query) as recorder:
        strict.emit_sync("user.login")
    assert recorder.names == []
    with strict.muted(query):
        assert len(strict.emit_sync("user.login").results) == 1


def test_strict_topics_describe_and_counts_do_not_raise(strict: EventBus) -> None:
    assert strict.topics() == ("user.login",)
    assert strict.describe()[0]["declared"] is True
    assert strict.listener_count() == 1


def test_strict_introspection_of_declared_names_works(strict: EventBus) -> None:
    assert strict.has_listeners("user.login")
    assert strict.has_listeners("user.*")
    assert strict.has_listeners("*")
    assert [info.callback for info in strict.listeners("user.login")] == [handler_a]
    assert strict.listener_count("user.*") == 1
