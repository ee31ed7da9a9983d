"""on / once / off / subscribed / clear: subscription semantics and validation."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import pytest
from emitters import Emitter

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


class TestOnReturns:
    def test_on_returns_the_function(self, bus: EventBus) -> None:
        """On returns the function unchanged."""
        assert bus.on("a", _noop) is _noop

    def test_once_returns_the_function(self, bus: EventBus) -> None:
        """Once returns the function unchanged."""
        assert bus.once("a", _noop) is _noop

    @pytest.mark.parametrize("kind", ["bound method", "callable object", "partial", "lambda"])
    def test_on_returns_any_callable(self, bus: EventBus, kind: str) -> None:
        """On returns any callable unchanged."""
        counter = Counter()
        handler: Callable[[Event], Any] = {
            "bound method": counter.handle,
            "callable object": CallableCounter(),
            "partial": functools.partial(_recorder, [], "x"),
            "lambda": lambda event: None,
        }[kind]

        assert bus.on("a", handler) is handler

    def test_on_as_decorator(self, bus: EventBus) -> None:
        """On as decorator subscribes and returns the function."""
        calls: list[str] = []

        @bus.on("a")
        def handler(event: Event) -> str:
            calls.append(event.name)
            return "done"

        report = bus.emit_sync("a")

        assert handler(Event("direct")) == "done"  # still the plain function
        assert calls == ["a", "direct"]
        assert report.values == ("done",)

    def test_once_as_decorator(self, bus: EventBus) -> None:
        """Once as decorator subscribes for one emission."""
        calls: list[str] = []

        @bus.once("a")
        def handler(event: Event) -> None:
            calls.append(event.name)

        bus.emit_sync("a")
        bus.emit_sync("a")

        assert calls == ["a"]
        assert callable(handler)

    def test_decorator_options(self, bus: EventBus) -> None:
        """Decorator applies the options given."""

        @bus.on("a", priority=3, owner="mod", timeout=2.0)
        def handler(event: Event) -> None:
            return None

        (info,) = bus.listeners("a")
        assert (info.priority, info.owner, info.timeout) == (3, "mod", 2.0)

    async def test_async_decorated_handler(self, bus: EventBus) -> None:
        """Async decorated handler is awaited."""

        @bus.on("a")
        async def handler(event: Event) -> str:
            return f"async {event.name}"

        report = await bus.emit("a")

        assert report.values == ("async a",)


# ---------------------------------------------------------------- order


class TestOrder:
    def test_priority_first(self, bus: EventBus) -> None:
        """Higher priority runs first."""
        calls: list[str] = []
        bus.on("a", _recorder(calls, "low"), priority=-5)
        bus.on("a", _recorder(calls, "default"))
        bus.on("a", _recorder(calls, "high"), priority=10)
        bus.on("a", _recorder(calls, "mid"), priority=3)

        bus.emit_sync("a")

        assert calls == ["high", "mid", "default", "low"]

    def test_equal_priority_order(self, bus: EventBus) -> None:
        """Equal priorities run in subscription order."""
        calls: list[str] = []
        for label in ["first", "second", "third", "fourth"]:
            bus.on("a", _recorder(calls, label), priority=1)

        bus.emit_sync("a")

        assert calls == ["first", "second", "third", "fourth"]

    def test_exact_and_pattern_order(self, bus: EventBus) -> None:
        """Exact and pattern subscriptions are merged in one order."""
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

    def test_report_order(self, bus: EventBus) -> None:
        """Order is the same in the report."""
        bus.on("a", _recorder([], "low", "low"), priority=-1)
        bus.on("*", _recorder([], "high", "high"), priority=1)
        bus.on("a", _recorder([], "mid", "mid"))

        assert bus.emit_sync("a").values == ("high", "mid", "low")

    async def test_sync_async_one_order(self, bus: EventBus) -> None:
        """Sync and async handlers run in one order."""
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


class TestOnce:
    async def test_runs_once(self, bus: EventBus, emit: Emitter) -> None:
        """Once handler runs only on the first emission."""
        calls: list[str] = []
        bus.once("a", _recorder(calls, "once"))

        first = await emit(bus, "a")
        second = await emit(bus, "a")

        assert calls == ["once"]
        assert len(first.results) == 1
        assert second.results == ()

    def test_unsubscribed(self, bus: EventBus) -> None:
        """Once handler is unsubscribed after running."""
        bus.once("a", _noop)
        bus.on("a", _other)

        bus.emit_sync("a")

        assert [info.callback for info in bus.listeners("a")] == [_other]
        assert bus.listener_count() == 1

    def test_on_once_true(self, bus: EventBus) -> None:
        """On with once true is the same as once."""
        calls: list[str] = []
        bus.on("a", _recorder(calls, "x"), once=True)

        bus.emit_sync("a")
        bus.emit_sync("a")

        assert calls == ["x"]
        assert bus.listener_count() == 0

    async def test_async_pattern(self, bus: EventBus, emit: Emitter) -> None:
        """A once async handler on a pattern runs for the first matching name only."""
        calls: list[str] = []

        async def handler(event: Event) -> None:
            calls.append(event.name)

        bus.once("*", handler)

        await emit(bus, "a")
        await emit(bus, "b")

        assert calls == ["a"]

    def test_claimed_by_predicate(self, bus: EventBus) -> None:
        """A once handler is claimed by the first emission whose predicate passes."""
        calls: list[int] = []
        bus.once(
            "a", lambda event: calls.append(event["n"]), predicate=lambda event: event["n"] > 1
        )

        for n in range(5):
            bus.emit_sync("a", n=n)

        assert calls == [2]
        assert bus.listener_count() == 0

    def test_raising_predicate(self, bus: EventBus) -> None:
        """Once handler whose predicate raises stays subscribed."""
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

    def test_failing_used_up(self, bus: EventBus) -> None:
        """Failing once handler is still used up."""

        def handler(event: Event) -> None:
            raise RuntimeError("boom")

        bus.once("a", handler)

        assert not bus.emit_sync("a").ok
        assert bus.emit_sync("a").results == ()

    def test_reemitting_runs_once(self, bus: EventBus) -> None:
        """Once handler emitting its own trigger elsewhere runs once."""
        calls: list[str] = []

        def handler(event: Event) -> None:
            calls.append(event.name)
            bus.emit_sync("b")

        bus.once("*", handler)

        bus.emit_sync("a")

        assert calls == ["a"]


# ---------------------------------------------------------------- predicates


class TestPredicates:
    def test_true_runs(self, bus: EventBus) -> None:
        """Handler runs when its predicate is true."""
        seen: list[Event] = []
        predicate_saw: list[Event] = []

        def predicate(event: Event) -> bool:
            predicate_saw.append(event)
            return True

        bus.on("a", seen.append, predicate=predicate)

        report = bus.emit_sync("a", k=1)

        assert seen == [report.event]
        assert predicate_saw == [report.event]

    def test_false_skips(self, bus: EventBus) -> None:
        """Handler is skipped when its predicate is false."""
        calls: list[str] = []
        bus.on("a", _recorder(calls, "skipped"), predicate=lambda event: False)
        bus.on("a", _recorder(calls, "runs", "ran"))

        report = bus.emit_sync("a")

        assert calls == ["runs"]
        assert report.values == ("ran",)
        assert len(report.results) == 1
        assert report.ok

    def test_truthiness(self, bus: EventBus) -> None:
        """Predicate result is tested for truth."""
        calls: list[int] = []
        bus.on("a", lambda event: calls.append(event["n"]), predicate=lambda event: event["n"])

        for n in [0, 1, 0, 2]:
            bus.emit_sync("a", n=n)

        assert calls == [1, 2]

    async def test_async_handler(self, bus: EventBus) -> None:
        """Async handler with predicate is filtered."""
        calls: list[int] = []

        async def handler(event: Event) -> None:
            calls.append(event["n"])

        bus.on("a", handler, predicate=lambda event: event["n"] % 2 == 0)

        for n in range(4):
            await bus.emit("a", n=n)

        assert calls == [0, 2]

    async def test_raising_predicate(self, bus: EventBus, emit: Emitter) -> None:
        """Raising predicate is that handlers failure and others still run."""
        calls: list[str] = []
        error = ValueError("predicate broke")

        def predicate(event: Event) -> bool:
            raise error

        bus.on("a", _recorder(calls, "before", "before"), priority=1)
        bus.on("a", _recorder(calls, "guarded"), predicate=predicate)
        bus.on("a", _recorder(calls, "after", "after"), priority=-1)

        report = await emit(bus, "a")

        assert calls == ["before", "after"]
        assert not report.ok
        assert [result.error for result in report.errors] == [error]
        assert report.errors[0].handler.has_predicate
        assert [r.error is None for r in report.results] == [True, False, True]
        assert report.values == ("before", "after")


# ---------------------------------------------------------------- duplicates


class TestDuplicates:
    def test_runs_once(self, bus: EventBus) -> None:
        """Subscribing the same handler twice runs it once."""
        calls: list[str] = []
        handler = _recorder(calls, "h")
        bus.on("a", handler)
        bus.on("a", handler)

        bus.emit_sync("a")

        assert calls == ["h"]
        assert bus.listener_count() == 1

    def test_keeps_options(self, bus: EventBus) -> None:
        """Duplicate subscription keeps the first options."""
        bus.on("a", _noop, priority=1, owner="first")
        bus.on("a", _noop, priority=9, owner="second", timeout=3)
        bus.once("a", _noop)

        (info,) = bus.listeners("a")
        assert (info.priority, info.owner, info.timeout, info.once) == (1, "first", None, False)

    def test_returns_handler(self, bus: EventBus) -> None:
        """Duplicate subscription returns the handler."""
        bus.on("a", _noop)

        assert bus.on("a", _noop, priority=5) is _noop

    def test_once(self, bus: EventBus) -> None:
        """Duplicate once subscription does not extend it."""
        calls: list[str] = []
        handler = _recorder(calls, "h")
        bus.once("a", handler)
        bus.once("a", handler)

        bus.emit_sync("a")
        bus.emit_sync("a")

        assert calls == ["h"]

    def test_bound_method(self, bus: EventBus) -> None:
        """Duplicate bound method subscription is detected."""
        counter = Counter()
        bus.on("a", counter.handle)
        bus.on("a", counter.handle)

        bus.emit_sync("a")

        assert len(counter.events) == 1
        assert bus.listener_count() == 1

    def test_two_keys_run_twice(self, bus: EventBus) -> None:
        """Same handler under two keys runs twice."""
        calls: list[str] = []
        handler = _recorder(calls, "h")
        bus.on("user.login", handler)
        bus.on("*", handler)

        report = bus.emit_sync("user.login")

        assert calls == ["h", "h"]
        assert [result.handler.pattern for result in report.results] == ["user.login", "*"]
        assert bus.listener_count() == 2

    def test_once_two_keys(self, bus: EventBus) -> None:
        """Once handler under two keys runs once per key."""
        calls: list[str] = []
        handler = _recorder(calls, "h")
        bus.once("user.*", handler)
        bus.once("*", handler)

        bus.emit_sync("user.login")
        bus.emit_sync("user.login")

        assert calls == ["h", "h"]

    def test_resubscribe_new_options(self, bus: EventBus) -> None:
        """Resubscribing after off uses the new options."""
        bus.on("a", _noop, priority=1)
        bus.off("a", _noop)
        bus.on("a", _noop, priority=7)

        assert [info.priority for info in bus.listeners("a")] == [7]


# ---------------------------------------------------------------- off


class TestOff:
    def test_unsubscribes(self, bus: EventBus) -> None:
        """Off returns true and unsubscribes."""
        calls: list[str] = []
        handler = _recorder(calls, "h")
        bus.on("a", handler)

        assert bus.off("a", handler) is True
        bus.emit_sync("a")

        assert calls == []
        assert bus.listener_count() == 0
        assert bus.topics() == ()

    def test_twice(self, bus: EventBus) -> None:
        """Off a second time returns false."""
        bus.on("a", _noop)
        bus.off("a", _noop)

        assert bus.off("a", _noop) is False

    def test_unknown_handler(self, bus: EventBus) -> None:
        """Off of a never subscribed handler returns false."""
        bus.on("a", _noop)

        assert bus.off("a", _other) is False
        assert bus.off("b", _noop) is False
        assert bus.listener_count() == 1

    def test_exact_key(self, bus: EventBus) -> None:
        """Off needs the exact key."""
        bus.on("user.*", _noop)
        bus.on("user.login", _other)

        assert bus.off("user.login", _noop) is False
        assert bus.off("*", _noop) is False
        assert bus.off("user.*", _other) is False
        assert bus.listener_count() == 2
        assert bus.off("user.*", _noop) is True
        assert [info.callback for info in bus.listeners("user.*")] == [_other]

    def test_leaves_others(self, bus: EventBus) -> None:
        """Off leaves other handlers and keys."""
        calls: list[str] = []
        keep, drop = _recorder(calls, "keep"), _recorder(calls, "drop")
        bus.on("a", keep)
        bus.on("a", drop)
        bus.on("*", drop)

        bus.off("a", drop)
        bus.emit_sync("a")

        assert calls == ["keep", "drop"]  # the "*" subscription of drop stays

    def test_once_before_run(self, bus: EventBus) -> None:
        """Off of a once handler before it ran."""
        calls: list[str] = []
        handler = _recorder(calls, "h")
        bus.once("a", handler)

        assert bus.off("a", handler) is True
        bus.emit_sync("a")

        assert calls == []

    def test_once_after_run(self, bus: EventBus) -> None:
        """Off of a once handler after it ran returns false."""
        bus.once("a", _noop)
        bus.emit_sync("a")

        assert bus.off("a", _noop) is False

    @pytest.mark.parametrize("handler", [None, 42, "handler"])
    def test_non_callable(self, bus: EventBus, handler: object) -> None:
        """Off with a non-callable raises TypeError."""
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


class TestClear:
    def test_all(self, loaded: EventBus) -> None:
        """Clear without arguments drops everything and counts."""
        assert loaded.clear() == 6
        assert loaded.listener_count() == 0
        assert loaded.topics() == ()
        assert loaded.emit_sync("user.login").results == ()

    def test_by_name(self, loaded: EventBus) -> None:
        """Clear by name drops only that exact key."""
        assert loaded.clear("user.login") == 2
        assert loaded.topics() == ("*", "order.paid", "user.*")
        assert loaded.listener_count() == 4

    def test_by_pattern(self, loaded: EventBus) -> None:
        """Clear by pattern drops only that pattern key."""
        assert loaded.clear("user.*") == 2
        assert loaded.topics() == ("*", "order.paid", "user.login")

    def test_by_owner(self, loaded: EventBus) -> None:
        """Clear by owner drops that owners subscriptions."""
        assert loaded.clear(owner="auth") == 2
        assert [(i.pattern, i.owner) for i in loaded.listeners("*")] == [
            ("user.login", None),
            ("user.*", "audit"),
            ("*", "audit"),
            ("order.paid", None),
        ]

    def test_name_and_owner(self, loaded: EventBus) -> None:
        """Clear by name and owner drops the intersection."""
        assert loaded.clear("user.*", owner="audit") == 1
        assert [(i.pattern, i.owner) for i in loaded.listeners("user.*")] == [
            ("user.login", "auth"),
            ("user.login", None),
            ("user.*", "auth"),
            ("*", "audit"),
        ]

    @pytest.mark.parametrize(
        ("name", "owner"),
        [
            ("nothing.here", None),
            (None, "nobody"),
            ("user.login", "audit"),
            ("user.profile.*", None),
        ],
    )
    def test_nothing(self, loaded: EventBus, name: str | None, owner: str | None) -> None:
        """Clear of nothing returns zero and changes nothing."""
        before = _state(loaded)

        assert loaded.clear(name, owner=owner) == 0
        assert _state(loaded) == before

    def test_empty_bus(self, bus: EventBus) -> None:
        """Clear on an empty bus returns zero."""
        assert bus.clear() == 0

    @pytest.mark.parametrize("owner", [42, b"auth", ["auth"]])
    def test_non_str_owner(self, loaded: EventBus, owner: object) -> None:
        """Clear with a non-str owner raises TypeError."""
        before = _state(loaded)

        with pytest.raises(TypeError, match="owner"):
            loaded.clear(owner=owner)  # type: ignore[arg-type]

        assert _state(loaded) == before

    def test_subscribe_after_clear(self, loaded: EventBus) -> None:
        """Handlers can subscribe again after clear."""
        loaded.clear()
        loaded.on("user.login", _noop, priority=4)

        assert [(i.pattern, i.priority) for i in loaded.listeners("user.login")] == [
            ("user.login", 4)
        ]


# ---------------------------------------------------------------- subscribed


class TestSubscribed:
    def test_block_only(self, bus: EventBus) -> None:
        """Subscribed handler runs inside the block only."""
        calls: list[str] = []
        handler = _recorder(calls, "h")

        with bus.subscribed("a", handler):
            bus.emit_sync("a")
            assert bus.listener_count("a") == 1
        bus.emit_sync("a")

        assert calls == ["h"]
        assert bus.listener_count() == 0
        assert bus.topics() == ()

    def test_yields_handler(self, bus: EventBus) -> None:
        """Subscribed yields the handler."""
        with bus.subscribed("a", _noop) as handler:
            assert handler is _noop

    def test_options(self, bus: EventBus) -> None:
        """Subscribed applies the options."""
        with bus.subscribed("a", _noop, priority=4, owner="mod", predicate=bool, timeout=1.5):
            (info,) = bus.listeners("a")
            assert (info.priority, info.owner, info.has_predicate, info.timeout) == (
                4,
                "mod",
                True,
                1.5,
            )

    def test_keeps_existing(self, bus: EventBus) -> None:
        """Subscribed leaves a pre existing subscription in place."""
        bus.on("a", _noop, priority=2)

        with bus.subscribed("a", _noop, priority=9):
            assert [info.priority for info in bus.listeners("a")] == [2]

        assert [info.priority for info in bus.listeners("a")] == [2]

    def test_block_raises(self, bus: EventBus) -> None:
        """Subscribed unsubscribes when the block raises."""
        with pytest.raises(RuntimeError, match="inside the block"), bus.subscribed("a", _noop):
            raise RuntimeError("inside the block")

        assert bus.listener_count() == 0

    def test_once_used(self, bus: EventBus) -> None:
        """Subscribed once handler used inside the block exits cleanly."""
        calls: list[str] = []

        with bus.subscribed("a", _recorder(calls, "h"), once=True):
            bus.emit_sync("a")
            bus.emit_sync("a")
            assert bus.listener_count() == 0

        assert calls == ["h"]

    def test_removed_inside(self, bus: EventBus) -> None:
        """Subscribed handler removed inside the block exits cleanly."""
        with bus.subscribed("a", _noop):
            assert bus.off("a", _noop) is True

        assert bus.listener_count() == 0

    def test_resubscription(self, bus: EventBus) -> None:
        """Subscribed does not remove a resubscription made in the block."""
        with bus.subscribed("a", _noop):
            bus.off("a", _noop)
            bus.on("a", _noop, priority=3)

        assert [info.priority for info in bus.listeners("a")] == [3]

    def test_nested(self, bus: EventBus) -> None:
        """Subscribed blocks can nest on different keys."""
        calls: list[str] = []
        handler = _recorder(calls, "h")

        with bus.subscribed("a", handler), bus.subscribed("*", handler):
            bus.emit_sync("a")
            assert bus.listener_count() == 2

        assert calls == ["h", "h"]
        assert bus.listener_count() == 0

    async def test_async(self, bus: EventBus) -> None:
        """subscribed works with an async handler."""
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


def _assert_refused_unchanged(
    bus: EventBus,
    subscribe: Callable[[EventBus, dict[str, Any]], object],
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    """Subscribing with these options raises ``error`` and leaves the bus as it was."""
    before = _state(bus)

    with pytest.raises(error, match=message):
        subscribe(bus, kwargs)

    assert _state(bus) == before


class TestBadInput:
    @pytest.mark.parametrize(("kwargs", "error", "message"), BAD_OPTIONS, ids=_ids(BAD_OPTIONS))
    @pytest.mark.parametrize("subscriber", SUBSCRIBERS)
    def test_bad_option(
        self,
        busy: EventBus,
        subscriber: str,
        kwargs: dict[str, Any],
        error: type[Exception],
        message: str,
    ) -> None:
        """Bad option raises and leaves the bus unchanged."""
        _assert_refused_unchanged(busy, SUBSCRIBERS[subscriber], kwargs, error, message)

    @pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ONCE, ids=_ids(BAD_ONCE))
    @pytest.mark.parametrize("subscriber", SUBSCRIBERS_WITH_ONCE)
    def test_non_bool_once(
        self,
        busy: EventBus,
        subscriber: str,
        kwargs: dict[str, Any],
        error: type[Exception],
        message: str,
    ) -> None:
        """Non-bool once raises and leaves the bus unchanged."""
        _assert_refused_unchanged(busy, SUBSCRIBERS_WITH_ONCE[subscriber], kwargs, error, message)

    @pytest.mark.parametrize("handler", [42, "handler", object(), Event("a")], ids=repr)
    @pytest.mark.parametrize("method", ["on", "once"])
    def test_non_callable_handler(self, busy: EventBus, method: str, handler: object) -> None:
        """Non-callable handler raises TypeError."""
        before = _state(busy)

        with pytest.raises(TypeError, match="handler"):
            getattr(busy, method)("a", handler)

        assert _state(busy) == before

    @pytest.mark.parametrize("handler", [None, 42, "handler"])
    def test_subscribed_non_callable(self, busy: EventBus, handler: object) -> None:
        """Subscribed with a non-callable handler raises TypeError."""
        before = _state(busy)

        with pytest.raises(TypeError, match="handler"), busy.subscribed("a", handler):  # type: ignore[arg-type]
            raise AssertionError("the block must not run")

        assert _state(busy) == before

    def test_decorator_raises_early(self, busy: EventBus) -> None:
        """Decorator form raises at the on call not at decoration."""
        before = _state(busy)

        with pytest.raises(TypeError, match="priority"):
            busy.on("a", priority="high")  # type: ignore[call-overload]

        assert _state(busy) == before

    def test_decorator_non_callable(self, busy: EventBus) -> None:
        """Decorator with a non-callable raises TypeError."""
        decorator = busy.on("a")
        before = _state(busy)

        with pytest.raises(TypeError, match="handler"):
            decorator(42)  # type: ignore[type-var]

        assert _state(busy) == before

    @pytest.mark.parametrize("timeout", [0, 0.0, 1, 2.5])
    def test_timeouts_accepted(self, bus: EventBus, timeout: float) -> None:
        """Zero and positive timeouts are accepted (an infinite one is refused)."""
        bus.on("a", _noop, timeout=timeout)

        assert bus.listeners("a")[0].timeout == timeout

    @pytest.mark.parametrize("priority", [-(10**20), -1, 0, 1, 10**20])
    def test_int_priority(self, bus: EventBus, priority: int) -> None:
        """Any int priority is accepted."""
        bus.on("a", _noop, priority=priority)

        assert bus.listeners("a")[0].priority == priority

    def test_int_subclass_priority(self, bus: EventBus) -> None:
        """Int subclass priority other than bool is accepted."""

        class Level(int):
            pass

        bus.on("a", _noop, priority=Level(3))
        bus.on("a", _other)

        assert [info.callback for info in bus.listeners("a")] == [_noop, _other]


# ---------------------------------------------------------------- kinds of handlers


class Notifier:
    """A callable object that happens to have a ``func`` attribute, like a partial."""

    def __init__(self, func: object) -> None:
        self.func = func

    def __call__(self, event: Event) -> None:
        return None


class TestHandlerKinds:
    async def test_bound_method(self, bus: EventBus) -> None:
        """Bound method handler receives the event."""
        counter = Counter()
        bus.on("a", counter.handle)

        report = await bus.emit("a", k=1)

        assert counter.events == [report.event]
        assert report.values == ("method",)

    async def test_async_bound_method(self, bus: EventBus) -> None:
        """Async bound method handler is awaited."""
        counter = Counter()
        bus.on("a", counter.handle_async)

        report = await bus.emit("a")

        assert counter.events == [report.event]
        assert report.values == ("async method",)

    async def test_callable_object(self, bus: EventBus) -> None:
        """Callable object handler is called."""
        handler = CallableCounter()
        bus.on("a", handler)

        report = await bus.emit("a")

        assert handler.events == [report.event]
        assert report.values == ("callable",)

    async def test_async_callable_object(self, bus: EventBus) -> None:
        """Async callable object handler is awaited."""
        handler = AsyncCallable()
        bus.on("a", handler)

        report = await bus.emit("a")

        assert handler.events == [report.event]
        assert report.values == ("async callable",)

    async def test_partial(self, bus: EventBus) -> None:
        """Partial handler is called with the event."""
        seen: list[tuple[str, Event]] = []

        def handler(label: str, event: Event) -> str:
            seen.append((label, event))
            return label

        bus.on("a", functools.partial(handler, "bound"))

        report = await bus.emit("a")

        assert seen == [("bound", report.event)]
        assert report.values == ("bound",)

    async def test_async_partial(self, bus: EventBus) -> None:
        """Partial of an async function is awaited."""

        async def handler(label: str, event: Event) -> str:
            return f"{label}:{event.name}"

        bus.on("a", functools.partial(handler, "p"))

        report = await bus.emit("a")

        assert report.values == ("p:a",)

    def test_off_callables_partials(self, bus: EventBus) -> None:
        """Off works for callable objects and partials."""
        callable_object = CallableCounter()
        partial = functools.partial(_recorder, [], "x")
        bus.on("a", callable_object)
        bus.on("a", partial)

        assert bus.off("a", callable_object) is True
        assert bus.off("a", partial) is True
        assert bus.listener_count() == 0

    def test_distinct_partials(self, bus: EventBus) -> None:
        """Two distinct partials of one function are two subscriptions."""
        calls: list[str] = []

        def handler(label: str, event: Event) -> None:
            calls.append(label)

        bus.on("a", functools.partial(handler, "x"))
        bus.on("a", functools.partial(handler, "y"))

        bus.emit_sync("a")

        assert calls == ["x", "y"]
        assert bus.listener_count("a") == 2

    def test_info_read_only(self, bus: EventBus) -> None:
        """HandlerInfo in listeners is read-only."""
        bus.on("a", _noop)
        (info,) = bus.listeners("a")

        assert isinstance(info, HandlerInfo)
        with pytest.raises(AttributeError):
            info.priority = 5  # type: ignore[misc]
        assert bus.listeners("a")[0].priority == 0

    @pytest.mark.parametrize("func", ["email", _other], ids=["str", "function"])
    def test_info_name_callable_object(self, bus: EventBus, func: object) -> None:
        """HandlerInfo's name of a callable object with a ``__func__`` attribute is its class.

        Regression: any callable with a `func` attribute was named after that attribute.
        """
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
    def test_info_name_partial(
        self, bus: EventBus, make: Callable[[], Callable[[Event], Any]], expected: str
    ) -> None:
        """HandlerInfo's name of a partial is the wrapped callable's."""
        bus.on("a", make())

        assert bus.listeners("a")[0].name == f"{__name__}.{expected}"
