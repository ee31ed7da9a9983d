"""on / once / off / subscribed / clear: subscription semantics and validation."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import pytest

from eventbus import Event, EventBus, HandlerInfo


def _noop(event: Event) -> None:
    return None


def _other(event: Event) -> None:
    return None


def _recorder(calls: list[str], label: str, value: object = None) -> Callable[[Event], object]:
    def handler(event: Event) -> object:
        calls.append(label)
        return value

    return handler


def _state(bus: EventBus) -> tuple[object, ...]:
    return bus.topics(), bus.listener_count(), bus.describe()


class Counter:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> str:
        self.events.append(event)
        return "method"

    async def handle_async(self, event: Event) -> str:
        self.events.append(event)
        return "async method"


class CallableCounter:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> str:
        self.events.append(event)
        return "callable"


class AsyncCallable:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> str:
        self.events.append(event)
        return "async callable"


# ---------------------------------------------------------------- return value, decorator


def test_on_returns_the_function_unchanged(bus: EventBus) -> None:
    assert bus.on("a", _noop) is _noop


def test_once_returns_the_function_unchanged(bus: EventBus) -> None:
    assert bus.once("a", _noop) is _noop


@pytest.mark.parametrize("kind", ["bound method", "callable object", "partial", "lambda"])
def test_on_returns_any_callable_unchanged(bus: EventBus, kind: str) -> None:
    counter = Counter()
    handler: Callable[[Event], Any] = {
        "bound method": counter.handle,
        "callable object": CallableCounter(),
        "partial": functools.partial(_recorder, [], "x"),
        "lambda": lambda event: None,
    }[kind]

    assert bus.on("a", handler) is handler


def test_on_as_decorator_subscribes_and_returns_the_function(bus: EventBus) -> None:
    calls: list[str] = []

    @bus.on("a")
    def handler(event: Event) -> str:
        calls.append(event.name)
        return "done"

    report = bus.emit_sync("a")

    assert handler(Event("direct")) == "done"  # still the plain function
    assert calls == ["a", "direct"]
    assert report.values == ("done",)


def test_once_as_decorator_subscribes_for_one_emission(bus: EventBus) -> None:
    calls: list[str] = []

    @bus.once("a")
    def handler(event: Event) -> None:
        calls.append(event.name)

    bus.emit_sync("a")
    bus.emit_sync("a")

    assert calls == ["a"]
    assert callable(handler)


def test_decorator_applies_the_options_given(bus: EventBus) -> None:
    @bus.on("a", priority=3, owner="mod", timeout=2.0)
    def handler(event: Event) -> None:
        return None

    (info,) = bus.listeners("a")
    assert (info.priority, info.owner, info.timeout) == (3, "mod", 2.0)


async def test_async_decorated_handler_is_awaited(bus: EventBus) -> None:
    @bus.on("a")
    async def handler(event: Event) -> str:
        return f"async {event.name}"

    report = await bus.emit("a")

    assert report.values == ("async a",)


# ---------------------------------------------------------------- order


def test_higher_priority_runs_first(bus: EventBus) -> None:
    calls: list[str] = []
    bus.on("a", _recorder(calls, "low"), priority=-5)
    bus.on("a", _recorder(calls, "default"))
    bus.on("a", _recorder(calls, "high"), priority=10)
    bus.on("a", _recorder(calls, "mid"), priority=3)

    bus.emit_sync("a")

    assert calls == ["high", "mid", "default", "low"]


def test_equal_priorities_run_in_subscription_order(bus: EventBus) -> None:
    calls: list[str] = []
    for label in ["first", "second", "third", "fourth"]:
        bus.on("a", _recorder(calls, label), priority=1)

    bus.emit_sync("a")

    assert calls == ["first", "second", "third", "fourth"]


def test_exact_and_pattern_subscriptions_are_merged_in_one_order(bus: EventBus) -> None:
    calls: list[str] = []
    bus.on("user.login", _recorder(calls, "exact-0"))
    bus.on("*", _recorder(calls, "star-0"))
    bus.on("user.*", _recorder(calls, "pattern-5"), priority=5)
    bus.on("user.login", _recorder(calls, "exact-5"), priority=5)
    bus.on("*", _recorder(calls, "star-10"), priority=10)
    bus.on("user.*", _recorder(calls, "pattern-0"))
    bus.on("user.login", _recorder(calls, "exact-neg"), priority=-1)

    bus.emit_sync("user.login")

    assert calls == [
        "star-10",
        "pattern-5",
        "exact-5",
        "exact-0",
        "star-0",
        "pattern-0",
        "exact-neg",
    ]


def test_order_is_the_same_in_the_report(bus: EventBus) -> None:
    bus.on("a", _recorder([], "low", "low"), priority=-1)
    bus.on("*", _recorder([], "high", "high"), priority=1)
    bus.on("a", _recorder([], "mid", "mid"))

    assert bus.emit_sync("a").values == ("high", "mid", "low")


async def test_sync_and_async_handlers_run_in_one_order(bus: EventBus) -> None:
    calls: list[str] = []

    async def async_handler(event: Event) -> str:
        calls.append("async")
        return "async"

    bus.on("a", _recorder(calls, "sync-1", "sync-1"))
    bus.on("a", async_handler)
    bus.on("a", _recorder(calls, "sync-2", "sync-2"))

    report = await bus.emit("a")

    assert calls == ["sync-1", "async", "sync-2"]
    assert report.values == ("sync-1", "async", "sync-2")


# ---------------------------------------------------------------- once


def test_once_handler_runs_only_on_the_first_emission(bus: EventBus) -> None:
    calls: list[str] = []
    bus.once("a", _recorder(calls, "once"))

    first = bus.emit_sync("a")
    second = bus.emit_sync("a")

    assert calls == ["once"]
    assert len(first.results) == 1
    assert second.results == ()


def test_once_handler_is_unsubscribed_after_running(bus: EventBus) -> None:
    bus.once("a", _noop)
    bus.on("a", _other)

    bus.emit_sync("a")

    assert [info.callback for info in bus.listeners("a")] == [_other]
    assert bus.listener_count() == 1


def test_on_with_once_true_is_the_same_as_once(bus: EventBus) -> None:
    calls: list[str] = []
    bus.on("a", _recorder(calls, "x"), once=True)

    bus.emit_sync("a")
    bus.emit_sync("a")

    assert calls == ["x"]
    assert bus.listener_count() == 0


async def test_once_handler_runs_once_under_emit(bus: EventBus) -> None:
    calls: list[str] = []

    async def handler(event: Event) -> None:
        calls.append(event.name)

    bus.once("*", handler)

    await bus.emit("a")
    await bus.emit("b")

    assert calls == ["a"]


def test_once_handler_is_claimed_by_the_first_emission_whose_predicate_passes(
    bus: EventBus,
) -> None:
    calls: list[int] = []
    bus.once("a", lambda event: calls.append(event["n"]), predicate=lambda event: event["n"] > 1)

    for n in range(5):
        bus.emit_sync("a", n=n)

    assert calls == [2]
    assert bus.listener_count() == 0


def test_once_handler_whose_predicate_raises_stays_subscribed(bus: EventBus) -> None:
    calls: list[int] = []

    def predicate(event: Event) -> bool:
        if event["n"] == 0:
            raise ValueError("bad predicate")
        return True

    bus.once("a", lambda event: calls.append(event["n"]), predicate=predicate)

    assert not bus.emit_sync("a", n=0).ok
    bus.emit_sync("a", n=1)
    bus.emit_sync("a", n=2)

    assert calls == [1]


def test_failing_once_handler_is_still_used_up(bus: EventBus) -> None:
    def handler(event: Event) -> None:
        raise RuntimeError("boom")

    bus.once("a", handler)

    assert not bus.emit_sync("a").ok
    assert bus.emit_sync("a").results == ()


def test_once_handler_emitting_its_own_trigger_elsewhere_runs_once(bus: EventBus) -> None:
    calls: list[str] = []

    def handler(event: Event) -> None:
        calls.append(event.name)
        bus.emit_sync("b")

    bus.once("*", handler)

    bus.emit_sync("a")

    assert calls == ["a"]


# ---------------------------------------------------------------- predicates


def test_handler_runs_when_its_predicate_is_true(bus: EventBus) -> None:
    seen: list[Event] = []
    predicate_saw: list[Event] = []

    def predicate(event: Event) -> bool:
        predicate_saw.append(event)
        return True

    bus.on("a", seen.append, predicate=predicate)

    report = bus.emit_sync("a", k=1)

    assert seen == [report.event]
    assert predicate_saw == [report.event]


def test_handler_is_skipped_when_its_predicate_is_false(bus: EventBus) -> None:
    calls: list[str] = []
    bus.on("a", _recorder(calls, "skipped"), predicate=lambda event: False)
    bus.on("a", _recorder(calls, "runs", "ran"))

    report = bus.emit_sync("a")

    assert calls == ["runs"]
    assert report.values == ("ran",)
    assert len(report.results) == 1
    assert report.ok


def test_predicate_result_is_tested_for_truth(bus: EventBus) -> None:
    calls: list[int] = []
    bus.on("a", lambda event: calls.append(event["n"]), predicate=lambda event: event["n"])

    for n in [0, 1, 0, 2]:
        bus.emit_sync("a", n=n)

    assert calls == [1, 2]


async def test_async_handler_with_predicate_is_filtered(bus: EventBus) -> None:
    calls: list[int] = []

    async def handler(event: Event) -> None:
        calls.append(event["n"])

    bus.on("a", handler, predicate=lambda event: event["n"] % 2 == 0)

    for n in range(4):
        await bus.emit("a", n=n)

    assert calls == [0, 2]


def test_raising_predicate_is_that_handlers_failure_and_others_still_run(bus: EventBus) -> None:
    calls: list[str] = []
    error = ValueError("predicate broke")

    def predicate(event: Event) -> bool:
        raise error

    bus.on("a", _recorder(calls, "before", "before"), priority=1)
    bus.on("a", _recorder(calls, "guarded"), predicate=predicate)
    bus.on("a", _recorder(calls, "after", "after"), priority=-1)

    report = bus.emit_sync("a")

    assert calls == ["before", "after"]
    assert not report.ok
    assert [result.error for result in report.errors] == [error]
    assert report.errors[0].handler.has_predicate
    assert [r.error is None for r in report.results] == [True, False, True]
    assert report.values == ("before", "after")


async def test_raising_predicate_under_emit_is_reported(bus: EventBus) -> None:
    def predicate(event: Event) -> bool:
        raise KeyError("nope")

    async def handler(event: Event) -> None:
        raise AssertionError("must not run")

    bus.on("a", handler, predicate=predicate)

    report = await bus.emit("a")

    assert len(report.errors) == 1
    assert isinstance(report.errors[0].error, KeyError)


# ---------------------------------------------------------------- duplicates


def test_subscribing_the_same_handler_twice_runs_it_once(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")
    bus.on("a", handler)
    bus.on("a", handler)

    bus.emit_sync("a")

    assert calls == ["h"]
    assert bus.listener_count() == 1


def test_duplicate_subscription_keeps_the_first_options(bus: EventBus) -> None:
    bus.on("a", _noop, priority=1, owner="first")
    bus.on("a", _noop, priority=9, owner="second", timeout=3)
    bus.once("a", _noop)

    (info,) = bus.listeners("a")
    assert (info.priority, info.owner, info.timeout, info.once) == (1, "first", None, False)


def test_duplicate_subscription_returns_the_handler(bus: EventBus) -> None:
    bus.on("a", _noop)

    assert bus.on("a", _noop, priority=5) is _noop


def test_duplicate_once_subscription_does_not_extend_it(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")
    bus.once("a", handler)
    bus.once("a", handler)

    bus.emit_sync("a")
    bus.emit_sync("a")

    assert calls == ["h"]


def test_duplicate_bound_method_subscription_is_detected(bus: EventBus) -> None:
    counter = Counter()
    bus.on("a", counter.handle)
    bus.on("a", counter.handle)

    bus.emit_sync("a")

    assert len(counter.events) == 1
    assert bus.listener_count() == 1


def test_same_handler_under_two_keys_runs_twice(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")
    bus.on("user.login", handler)
    bus.on("*", handler)

    report = bus.emit_sync("user.login")

    assert calls == ["h", "h"]
    assert [result.handler.pattern for result in report.results] == ["user.login", "*"]
    assert bus.listener_count() == 2


def test_once_handler_under_two_keys_runs_once_per_key(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")
    bus.once("user.*", handler)
    bus.once("*", handler)

    bus.emit_sync("user.login")
    bus.emit_sync("user.login")

    assert calls == ["h", "h"]


def test_resubscribing_after_off_uses_the_new_options(bus: EventBus) -> None:
    bus.on("a", _noop, priority=1)
    bus.off("a", _noop)
    bus.on("a", _noop, priority=7)

    assert [info.priority for info in bus.listeners("a")] == [7]


# ---------------------------------------------------------------- off


def test_off_returns_true_and_unsubscribes(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")
    bus.on("a", handler)

    assert bus.off("a", handler) is True
    bus.emit_sync("a")

    assert calls == []
    assert bus.listener_count() == 0
    assert bus.topics() == ()


def test_off_a_second_time_returns_false(bus: EventBus) -> None:
    bus.on("a", _noop)
    bus.off("a", _noop)

    assert bus.off("a", _noop) is False


def test_off_of_a_never_subscribed_handler_returns_false(bus: EventBus) -> None:
    bus.on("a", _noop)

    assert bus.off("a", _other) is False
    assert bus.off("b", _noop) is False
    assert bus.listener_count() == 1


def test_off_needs_the_exact_key(bus: EventBus) -> None:
    bus.on("user.*", _noop)
    bus.on("user.login", _other)

    assert bus.off("user.login", _noop) is False
    assert bus.off("*", _noop) is False
    assert bus.off("user.*", _other) is False
    assert bus.listener_count() == 2
    assert bus.off("user.*", _noop) is True
    assert [info.callback for info in bus.listeners("user.*")] == [_other]


def test_off_leaves_other_handlers_and_keys(bus: EventBus) -> None:
    calls: list[str] = []
    keep, drop = _recorder(calls, "keep"), _recorder(calls, "drop")
    bus.on("a", keep)
    bus.on("a", drop)
    bus.on("*", drop)

    bus.off("a", drop)
    bus.emit_sync("a")

    assert calls == ["keep", "drop"]  # the "*" subscription of drop stays


def test_off_of_a_once_handler_before_it_ran(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")
    bus.once("a", handler)

    assert bus.off("a", handler) is True
    bus.emit_sync("a")

    assert calls == []


def test_off_of_a_once_handler_after_it_ran_returns_false(bus: EventBus) -> None:
    bus.once("a", _noop)
    bus.emit_sync("a")

    assert bus.off("a", _noop) is False


@pytest.mark.parametrize("handler", [None, 42, "handler"])
def test_off_with_a_non_callable_raises_type_error(bus: EventBus, handler: object) -> None:
    bus.on("a", _noop)
    before = _state(bus)

    with pytest.raises(TypeError, match="handler"):
        bus.off("a", handler)  # type: ignore[arg-type]

    assert _state(bus) == before


# ---------------------------------------------------------------- clear


@pytest.fixture
def loaded(bus: EventBus) -> EventBus:
    bus.on("user.login", _noop, owner="auth")
    bus.on("user.login", _other)
    bus.on("user.*", _noop, owner="auth")
    bus.on("user.*", _other, owner="audit")
    bus.on("*", _noop, owner="audit")
    bus.on("order.paid", _noop)
    return bus


def test_clear_without_arguments_drops_everything_and_counts(loaded: EventBus) -> None:
    assert loaded.clear() == 6
    assert loaded.listener_count() == 0
    assert loaded.topics() == ()
    assert loaded.emit_sync("user.login").results == ()


def test_clear_by_name_drops_only_that_exact_key(loaded: EventBus) -> None:
    assert loaded.clear("user.login") == 2
    assert loaded.topics() == ("*", "order.paid", "user.*")
    assert loaded.listener_count() == 4


def test_clear_by_pattern_drops_only_that_pattern_key(loaded: EventBus) -> None:
    assert loaded.clear("user.*") == 2
    assert loaded.topics() == ("*", "order.paid", "user.login")


def test_clear_by_owner_drops_that_owners_subscriptions(loaded: EventBus) -> None:
    assert loaded.clear(owner="auth") == 2
    assert [(i.pattern, i.owner) for i in loaded.listeners("*")] == [
        ("user.login", None),
        ("user.*", "audit"),
        ("*", "audit"),
        ("order.paid", None),
    ]


def test_clear_by_name_and_owner_drops_the_intersection(loaded: EventBus) -> None:
    assert loaded.clear("user.*", owner="audit") == 1
    assert [(i.pattern, i.owner) for i in loaded.listeners("user.*")] == [
        ("user.login", "auth"),
        ("user.login", None),
        ("user.*", "auth"),
        ("*", "audit"),
    ]


@pytest.mark.parametrize(
    ("name", "owner"),
    [("nothing.here", None), (None, "nobody"), ("user.login", "audit"), ("user.profile.*", None)],
)
def test_clear_of_nothing_returns_zero_and_changes_nothing(
    loaded: EventBus, name: str | None, owner: str | None
) -> None:
    before = _state(loaded)

    assert loaded.clear(name, owner=owner) == 0
    assert _state(loaded) == before


def test_clear_on_an_empty_bus_returns_zero(bus: EventBus) -> None:
    assert bus.clear() == 0


@pytest.mark.parametrize("owner", [42, b"auth", ["auth"]])
def test_clear_with_a_non_str_owner_raises_type_error(loaded: EventBus, owner: object) -> None:
    before = _state(loaded)

    with pytest.raises(TypeError, match="owner"):
        loaded.clear(owner=owner)  # type: ignore[arg-type]

    assert _state(loaded) == before


def test_handlers_can_subscribe_again_after_clear(loaded: EventBus) -> None:
    loaded.clear()
    loaded.on("user.login", _noop, priority=4)

    assert [(i.pattern, i.priority) for i in loaded.listeners("user.login")] == [("user.login", 4)]


# ---------------------------------------------------------------- subscribed


def test_subscribed_handler_runs_inside_the_block_only(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")

    with bus.subscribed("a", handler):
        bus.emit_sync("a")
        assert bus.listener_count("a") == 1
    bus.emit_sync("a")

    assert calls == ["h"]
    assert bus.listener_count() == 0
    assert bus.topics() == ()


def test_subscribed_yields_the_handler(bus: EventBus) -> None:
    with bus.subscribed("a", _noop) as handler:
        assert handler is _noop


def test_subscribed_applies_the_options(bus: EventBus) -> None:
    with bus.subscribed("a", _noop, priority=4, owner="mod", predicate=bool, timeout=1.5):
        (info,) = bus.listeners("a")
        assert (info.priority, info.owner, info.has_predicate, info.timeout) == (
            4,
            "mod",
            True,
            1.5,
        )


def test_subscribed_leaves_a_pre_existing_subscription_in_place(bus: EventBus) -> None:
    bus.on("a", _noop, priority=2)

    with bus.subscribed("a", _noop, priority=9):
        assert [info.priority for info in bus.listeners("a")] == [2]

    assert [info.priority for info in bus.listeners("a")] == [2]


def test_subscribed_unsubscribes_when_the_block_raises(bus: EventBus) -> None:
    with pytest.raises(RuntimeError, match="inside the block"), bus.subscribed("a", _noop):
        raise RuntimeError("inside the block")

    assert bus.listener_count() == 0


def test_subscribed_once_handler_used_inside_the_block_exits_cleanly(bus: EventBus) -> None:
    calls: list[str] = []

    with bus.subscribed("a", _recorder(calls, "h"), once=True):
        bus.emit_sync("a")
        bus.emit_sync("a")
        assert bus.listener_count() == 0

    assert calls == ["h"]


def test_subscribed_handler_removed_inside_the_block_exits_cleanly(bus: EventBus) -> None:
    with bus.subscribed("a", _noop):
        assert bus.off("a", _noop) is True

    assert bus.listener_count() == 0


def test_subscribed_does_not_remove_a_resubscription_made_in_the_block(bus: EventBus) -> None:
    with bus.subscribed("a", _noop):
        bus.off("a", _noop)
        bus.on("a", _noop, priority=3)

    assert [info.priority for info in bus.listeners("a")] == [3]


def test_subscribed_blocks_can_nest_on_different_keys(bus: EventBus) -> None:
    calls: list[str] = []
    handler = _recorder(calls, "h")

    with bus.subscribed("a", handler), bus.subscribed("*", handler):
        bus.emit_sync("a")
        assert bus.listener_count() == 2

    assert calls == ["h", "h"]
    assert bus.listener_count() == 0


async def test_subscribed_async_handler(bus: EventBus) -> None:
    seen: list[str] = []

    async def handler(event: Event) -> None:
        seen.append(event.name)

    with bus.subscribed("a", handler):
        await bus.emit("a")
    await bus.emit("a")

    assert seen == ["a"]


# ---------------------------------------------------------------- bad input (decision 20)


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"priority": "high"}, TypeError, "priority"),
    ({"priority": 1.5}, TypeError, "priority"),
    ({"priority": True}, TypeError, "priority"),
    ({"priority": None}, TypeError, "priority"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": -0.001}, ValueError, "timeout"),
    ({"timeout": -math.inf}, ValueError, "timeout"),
    ({"timeout": math.nan}, ValueError, "timeout"),
    ({"timeout": True}, TypeError, "timeout"),
    ({"timeout": "1"}, TypeError, "timeout"),
    ({"timeout": [1]}, TypeError, "timeout"),
    ({"weak": 1}, TypeError, "weak"),
    ({"weak": "yes"}, TypeError, "weak"),
    ({"owner": 1}, TypeError, "owner"),
    ({"owner": b"mod"}, TypeError, "owner"),
    ({"predicate": 1}, TypeError, "predicate"),
    ({"predicate": "event.n > 1"}, TypeError, "predicate"),
]
BAD_ONCE: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"once": 1}, TypeError, "once"),
    ({"once": None}, TypeError, "once"),
    ({"once": "yes"}, TypeError, "once"),
]


def _ids(cases: list[tuple[dict[str, Any], type[Exception], str]]) -> list[str]:
    return [f"{next(iter(kw))}={next(iter(kw.values()))!r}" for kw, _, _ in cases]


@pytest.fixture
def busy(bus: EventBus) -> EventBus:
    bus.on("a", _other, priority=1)
    bus.on("*", _other)
    return bus


def _subscribe_with_block(bus: EventBus, kwargs: dict[str, Any]) -> None:
    with bus.subscribed("a", _noop, **kwargs):
        raise AssertionError("the block must not run")


SUBSCRIBERS: dict[str, Callable[[EventBus, dict[str, Any]], object]] = {
    "on": lambda bus, kw: bus.on("a", _noop, **kw),
    "on-decorator": lambda bus, kw: bus.on("a", **kw),
    "once": lambda bus, kw: bus.once("a", _noop, **kw),
    "once-decorator": lambda bus, kw: bus.once("a", **kw),
    "subscribed": _subscribe_with_block,
}
SUBSCRIBERS_WITH_ONCE = {k: v for k, v in SUBSCRIBERS.items() if not k.startswith("once")}


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_OPTIONS, ids=_ids(BAD_OPTIONS))
@pytest.mark.parametrize("subscriber", SUBSCRIBERS)
def test_bad_option_raises_and_leaves_the_bus_unchanged(
    busy: EventBus,
    subscriber: str,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    before = _state(busy)

    with pytest.raises(error, match=message):
        SUBSCRIBERS[subscriber](busy, kwargs)

    assert _state(busy) == before


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ONCE, ids=_ids(BAD_ONCE))
@pytest.mark.parametrize("subscriber", SUBSCRIBERS_WITH_ONCE)
def test_non_bool_once_raises_and_leaves_the_bus_unchanged(
    busy: EventBus,
    subscriber: str,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    before = _state(busy)

    with pytest.raises(error, match=message):
        SUBSCRIBERS_WITH_ONCE[subscriber](busy, kwargs)

    assert _state(busy) == before


@pytest.mark.parametrize("handler", [42, "handler", object(), Event("a")], ids=repr)
@pytest.mark.parametrize("method", ["on", "once"])
def test_non_callable_handler_raises_type_error(
    busy: EventBus, method: str, handler: object
) -> None:
    before = _state(busy)

    with pytest.raises(TypeError, match="handler"):
        getattr(busy, method)("a", handler)

    assert _state(busy) == before


@pytest.mark.parametrize("handler", [None, 42, "handler"])
def test_subscribed_with_a_non_callable_handler_raises_type_error(
    busy: EventBus, handler: object
) -> None:
    before = _state(busy)

    with pytest.raises(TypeError, match="handler"), busy.subscribed("a", handler):  # type: ignore[arg-type]
        raise AssertionError("the block must not run")

    assert _state(busy) == before


def test_decorator_form_raises_at_the_on_call_not_at_decoration(busy: EventBus) -> None:
    before = _state(busy)

    with pytest.raises(TypeError, match="priority"):
        busy.on("a", priority="high")  # type: ignore[call-overload]

    assert _state(busy) == before


def test_decorator_with_a_non_callable_raises_type_error(busy: EventBus) -> None:
    decorator = busy.on("a")
    before = _state(busy)

    with pytest.raises(TypeError, match="handler"):
        decorator(42)  # type: ignore[type-var]

    assert _state(busy) == before


@pytest.mark.parametrize("timeout", [0, 0.0, 1, 2.5])
def test_zero_and_positive_timeouts_are_accepted(bus: EventBus, timeout: float) -> None:
    bus.on("a", _noop, timeout=timeout)

    assert bus.listeners("a")[0].timeout == timeout


@pytest.mark.parametrize("priority", [-(10**20), -1, 0, 1, 10**20])
def test_any_int_priority_is_accepted(bus: EventBus, priority: int) -> None:
    bus.on("a", _noop, priority=priority)

    assert bus.listeners("a")[0].priority == priority


def test_int_subclass_priority_other_than_bool_is_accepted(bus: EventBus) -> None:
    class Level(int):
        pass

    bus.on("a", _noop, priority=Level(3))
    bus.on("a", _other)

    assert [info.callback for info in bus.listeners("a")] == [_noop, _other]


# ---------------------------------------------------------------- kinds of handlers


async def test_bound_method_handler_receives_the_event(bus: EventBus) -> None:
    counter = Counter()
    bus.on("a", counter.handle)

    report = await bus.emit("a", k=1)

    assert counter.events == [report.event]
    assert report.values == ("method",)


async def test_async_bound_method_handler_is_awaited(bus: EventBus) -> None:
    counter = Counter()
    bus.on("a", counter.handle_async)

    report = await bus.emit("a")

    assert counter.events == [report.event]
    assert report.values == ("async method",)


async def test_callable_object_handler_is_called(bus: EventBus) -> None:
    handler = CallableCounter()
    bus.on("a", handler)

    report = await bus.emit("a")

    assert handler.events == [report.event]
    assert report.values == ("callable",)


async def test_async_callable_object_handler_is_awaited(bus: EventBus) -> None:
    handler = AsyncCallable()
    bus.on("a", handler)

    report = await bus.emit("a")

    assert handler.events == [report.event]
    assert report.values == ("async callable",)


async def test_partial_handler_is_called_with_the_event(bus: EventBus) -> None:
    seen: list[tuple[str, Event]] = []

    def handler(label: str, event: Event) -> str:
        seen.append((label, event))
        return label

    bus.on("a", functools.partial(handler, "bound"))

    report = await bus.emit("a")

    assert seen == [("bound", report.event)]
    assert report.values == ("bound",)


async def test_partial_of_an_async_function_is_awaited(bus: EventBus) -> None:
    async def handler(label: str, event: Event) -> str:
        return f"{label}:{event.name}"

    bus.on("a", functools.partial(handler, "p"))

    report = await bus.emit("a")

    assert report.values == ("p:a",)


def test_off_works_for_callable_objects_and_partials(bus: EventBus) -> None:
    callable_object = CallableCounter()
    partial = functools.partial(_recorder, [], "x")
    bus.on("a", callable_object)
    bus.on("a", partial)

    assert bus.off("a", callable_object) is True
    assert bus.off("a", partial) is True
    assert bus.listener_count() == 0


def test_two_distinct_partials_of_one_function_are_two_subscriptions(bus: EventBus) -> None:
    calls: list[str] = []

    def handler(label: str, event: Event) -> None:
        calls.append(label)

    bus.on("a", functools.partial(handler, "x"))
    bus.on("a", functools.partial(handler, "y"))

    bus.emit_sync("a")

    assert calls == ["x", "y"]
    assert bus.listener_count("a") == 2


def test_handler_info_in_listeners_is_read_only(bus: EventBus) -> None:
    bus.on("a", _noop)
    (info,) = bus.listeners("a")

    assert isinstance(info, HandlerInfo)
    with pytest.raises(AttributeError):
        info.priority = 5  # type: ignore[misc]
    assert bus.listeners("a")[0].priority == 0


class Notifier:
    """A callable object that happens to have a ``func`` attribute, like a partial."""

    def __init__(self, func: object) -> None:
        self.func = func

    def __call__(self, event: Event) -> None:
        return None


@pytest.mark.parametrize("func", ["email", _other], ids=["str", "function"])
def test_handler_info_name_of_a_callable_object_with_a_func_attribute_is_its_class(
    bus: EventBus, func: object
) -> None:
    """Regression: any callable with a `func` attribute was named after that attribute."""
    bus.on("a", Notifier(func))

    assert bus.listeners("a")[0].name == f"{__name__}.Notifier"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: functools.partial(_recorder, [], "x"), "_recorder"),
        (lambda: functools.partial(Counter().handle), "Counter.handle"),
    ],
    ids=["function", "bound method"],
)
def test_handler_info_name_of_a_partial_is_the_wrapped_callables(
    bus: EventBus, make: Callable[[], Callable[[Event], Any]], expected: str
) -> None:
    bus.on("a", make())

    assert bus.listeners("a")[0].name == f"{__name__}.{expected}"
