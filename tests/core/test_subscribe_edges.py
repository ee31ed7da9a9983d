"""Regression tests for the subscribing edges of issue 12: handler identity,
names, async detection, signature checks, timeouts, re-entrant table changes,
collected-before-running warnings and the emit_sync refusal."""

from __future__ import annotations

import asyncio
import collections
import functools
import gc
import inspect
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
import structlog.testing

from eventbus import Event, EventBus


def _noop(event: Event) -> None:
    pass


class TestInfiniteTimeouts:
    """Item 7: an infinite timeout is refused like nan (it is not JSON)."""

    @pytest.mark.parametrize("value", [math.inf, -math.inf])
    def test_subscription_timeout(self, bus: EventBus, value: float) -> None:
        """on(..., timeout=inf) is a ValueError naming the option."""
        with pytest.raises(ValueError, match="timeout must be a finite"):
            bus.on("a", _noop, timeout=value)

    def test_bus_handler_timeout(self) -> None:
        """EventBus(handler_timeout=inf) is a ValueError naming the option."""
        with pytest.raises(ValueError, match="handler_timeout must be a finite"):
            EventBus(handler_timeout=math.inf)

    def test_describe_stays_json(self, bus: EventBus) -> None:
        """Accepted timeouts keep describe() strict JSON."""
        bus.on("a", _noop, timeout=1e9)
        json.dumps(bus.describe(), allow_nan=False)


class TestBuiltinMethodIdentity:
    """Item 1: built-in bound methods are one handler per (object, method)."""

    def test_subscribing_twice_is_one_subscription(self, bus: EventBus) -> None:
        """bus.on("a", items.append) twice subscribes once and runs once."""
        items: list[Event] = []
        bus.on("a", items.append)
        bus.on("a", items.append)

        bus.emit_sync("a")

        assert bus.listener_count("a") == 1
        assert len(items) == 1

    def test_off_removes_it(self, bus: EventBus) -> None:
        """bus.off("a", items.append) finds the subscription and removes it."""
        items: list[Event] = []
        bus.on("a", items.append)

        assert bus.off("a", items.append) is True
        assert bus.listener_count() == 0

    def test_two_objects_are_two_subscriptions(self, bus: EventBus) -> None:
        """The same method of two objects is two handlers."""
        first: list[Event] = []
        second: list[Event] = []
        bus.on("a", first.append)
        bus.on("a", second.append)

        assert bus.listener_count("a") == 2

    def test_weakrefable_object_is_held_weakly(self, bus: EventBus) -> None:
        """deque().append is held weakly by default: the subscription dies with the deque."""
        items: collections.deque[Event] = collections.deque()
        bus.on("a", items.append)
        assert bus.listeners("a")[0].weak is True

        del items
        gc.collect()

        assert bus.listener_count() == 0

    def test_weakly_held_one_still_runs(self, bus: EventBus) -> None:
        """A weakly held built-in method runs while its object lives."""
        items: collections.deque[Event] = collections.deque()
        bus.on("a", items.append)

        bus.emit_sync("a")

        assert len(items) == 1

    def test_non_weakrefable_object_is_held_strongly(self, bus: EventBus) -> None:
        """[].append cannot be held weakly: it is held strongly and keeps working."""
        bus.on("a", [].append)
        gc.collect()

        assert bus.listeners("a")[0].weak is False
        assert bus.emit_sync("a").ok

    def test_weak_true_on_non_weakrefable_object_says_why(self, bus: EventBus) -> None:
        """weak=True on [].append is a TypeError saying lists cannot be weakly referenced."""
        with pytest.raises(TypeError, match=r"\(list\) does not support weak references"):
            bus.on("a", [].append, weak=True)


@functools.lru_cache
def _cached(event: Event) -> None:
    pass


class _Wrapper:
    """A wrapper without a __qualname__ of its own."""

    def __init__(self, wrapped: Callable[[Event], object]) -> None:
        self.__wrapped__ = wrapped

    def __call__(self, event: Event) -> object:
        return self.__wrapped__(event)


class TestHandlerNames:
    """Item 2: HandlerInfo.name is module.qualname of the callable."""

    def test_list_method(self, bus: EventBus) -> None:
        """A list's append is builtins.list.append."""
        bus.on("a", [].append)

        assert bus.listeners("a")[0].name == "builtins.list.append"

    def test_deque_method(self, bus: EventBus) -> None:
        """A deque's append is collections.deque.append."""
        items: collections.deque[Event] = collections.deque()
        bus.on("a", items.append)

        assert bus.listeners("a")[0].name == "collections.deque.append"

    def test_lru_cache(self, bus: EventBus) -> None:
        """An lru_cache-wrapped function is named by the function it wraps."""
        bus.on("a", _cached)

        assert bus.listeners("a")[0].name == f"{__name__}._cached"

    def test_wrapper_without_qualname(self, bus: EventBus) -> None:
        """A wrapper object without its own qualname is named by its __wrapped__."""
        bus.on("a", _Wrapper(_noop))

        assert bus.listeners("a")[0].name == f"{__name__}._noop"


class _Hostile:
    """Callable, but every attribute it does not have raises RuntimeError."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: Event) -> None:
        self.calls += 1

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"no {name} here")


class TestHostileGetattr:
    """Item 6: a callable whose __getattr__ raises can be subscribed."""

    def test_it_subscribes_and_runs(self, bus: EventBus) -> None:
        """on() accepts it, and emitting runs it."""
        handler = _Hostile()
        bus.on("a", handler)

        assert bus.emit_sync("a").ok
        assert handler.calls == 1

    def test_named_by_its_class(self, bus: EventBus) -> None:
        """Its name falls back to its class's module.qualname."""
        bus.on("a", _Hostile())

        assert bus.listeners("a")[0].name == f"{__name__}._Hostile"

    def test_weakly(self, bus: EventBus) -> None:
        """weak=True holds it weakly, and off() removes it."""
        handler = _Hostile()
        bus.on("a", handler, weak=True)

        assert bus.listeners("a")[0].weak is True
        assert bus.off("a", handler) is True

    def test_as_predicate(self, bus: EventBus) -> None:
        """It may be a predicate too."""
        bus.on("a", _noop, predicate=_Hostile())

        assert bus.emit_sync("a").ok


class _AsyncCall:
    async def __call__(self, event: Event) -> str:
        return "done"


class TestAsyncDetection:
    """Item 3: inspect's rule decides whether a handler is async."""

    @pytest.mark.skipif(
        not hasattr(inspect, "markcoroutinefunction"),
        reason="inspect.markcoroutinefunction is new in Python 3.12",
    )
    def test_marked_function_is_async(self, bus: EventBus) -> None:
        """A function marked with inspect.markcoroutinefunction counts as async."""

        async def work(event: Event) -> str:
            return "done"

        def handler(event: Event) -> Any:
            return work(event)

        bus.on("a", inspect.markcoroutinefunction(handler))  # type: ignore[attr-defined]

        assert bus.listeners("a")[0].is_async is True

    @pytest.mark.skipif(
        not hasattr(inspect, "markcoroutinefunction"),
        reason="inspect.markcoroutinefunction is new in Python 3.12",
    )
    def test_marked_method_is_async(self, bus: EventBus) -> None:
        """A bound method whose function is marked counts as async."""

        class Holder:
            def handle(self, event: Event) -> Any:
                return asyncio.sleep(0)

        inspect.markcoroutinefunction(Holder.handle)  # type: ignore[attr-defined]
        holder = Holder()
        bus.on("a", holder.handle)

        assert bus.listeners("a")[0].is_async is True

    def test_async_call_is_async(self, bus: EventBus) -> None:
        """An object whose class's __call__ is a coroutine function counts as async."""
        bus.on("a", _AsyncCall())

        assert bus.listeners("a")[0].is_async is True

    def test_plain_function_is_sync(self, bus: EventBus) -> None:
        """A plain function is sync."""
        bus.on("a", _noop)

        assert bus.listeners("a")[0].is_async is False


def _no_argument() -> None:
    pass


def _two_arguments(event: Event, extra: object) -> None:
    pass


def _keyword_only(event: Event, *, extra: object) -> None:
    pass


def _optional_extra(event: Event, extra: object = None) -> None:
    pass


def _star_args(*args: object) -> None:
    pass


def _positional_only(event: Event, /) -> None:
    pass


class _Methods:
    def no_event(self) -> None:
        pass

    def takes_event(self, event: Event) -> None:
        pass


class TestSignatureCheck:
    """Item 4: on() refuses a handler or predicate that cannot take one Event."""

    @pytest.mark.parametrize("handler", [_no_argument, _two_arguments, _keyword_only])
    def test_unfit_handler_is_refused(self, bus: EventBus, handler: Callable[..., Any]) -> None:
        """A handler that cannot be called with one argument is a TypeError naming it."""
        with pytest.raises(
            TypeError, match=rf"handler {__name__}\.{handler.__name__} .*\(the Event\)"
        ):
            bus.on("a", handler)
        assert bus.listener_count() == 0

    def test_message_shows_the_signature(self, bus: EventBus) -> None:
        """The message shows the handler's signature."""
        with pytest.raises(TypeError, match=r"its signature is \(event: .*, extra: .*\)"):
            bus.on("a", _two_arguments)

    @pytest.mark.parametrize("handler", [_optional_extra, _star_args, _positional_only])
    def test_fit_handler_is_accepted(self, bus: EventBus, handler: Callable[..., Any]) -> None:
        """Optional extras, *args and positional-only parameters are fine."""
        bus.on("a", handler)

        assert bus.emit_sync("a").ok

    def test_bound_method_without_event_is_refused(self, bus: EventBus) -> None:
        """A bound method is read without self: def m(self) is refused."""
        with pytest.raises(TypeError, match="no_event"):
            bus.on("a", _Methods().no_event)

    def test_bound_method_with_event_is_accepted(self, bus: EventBus) -> None:
        """def m(self, event) is fine."""
        methods = _Methods()
        bus.on("a", methods.takes_event)

        assert bus.listener_count() == 1

    def test_lambda_without_argument_is_refused(self, bus: EventBus) -> None:
        """lambda: ... is refused."""
        with pytest.raises(TypeError, match="cannot be called with one argument"):
            bus.on("a", lambda: None)

    def test_decorator_form(self, bus: EventBus) -> None:
        """The decorator form checks too."""
        with pytest.raises(TypeError, match="_no_argument"):
            bus.on("a")(_no_argument)  # type: ignore[arg-type]

    def test_once(self, bus: EventBus) -> None:
        """once() checks too."""
        with pytest.raises(TypeError, match="_two_arguments"):
            bus.once("a", _two_arguments)  # type: ignore[arg-type]

    def test_subscribed(self, bus: EventBus) -> None:
        """subscribed() checks too."""
        with (
            pytest.raises(TypeError, match="_no_argument"),
            bus.subscribed("a", _no_argument),  # type: ignore[arg-type]
        ):
            pass

    def test_predicate_is_checked(self, bus: EventBus) -> None:
        """A predicate that cannot take one Event is a TypeError naming it."""
        with pytest.raises(TypeError, match=rf"predicate {__name__}\._two_arguments"):
            bus.on("a", _noop, predicate=_two_arguments)

    def test_without_signature_is_accepted(self, bus: EventBus) -> None:
        """A builtin whose signature Python cannot read is accepted."""
        bus.on("a", "abc".startswith, predicate="abc".startswith)

        assert bus.listener_count() == 1

    def test_wrapped_function_is_read_through(self, bus: EventBus) -> None:
        """A functools.wraps wrapper is read as inspect.signature reads it."""

        @functools.wraps(_two_arguments)
        def wrapper(*args: object) -> None:
            pass

        with pytest.raises(TypeError, match=rf"{__name__}\._two_arguments"):
            bus.on("a", wrapper)


async def _async_predicate(event: Event) -> bool:
    return False


class TestAsyncPredicate:
    """Item 5: predicates are synchronous."""

    def test_async_function_is_refused(self, bus: EventBus) -> None:
        """An async def predicate is a TypeError naming it."""
        with pytest.raises(TypeError, match=rf"predicate {__name__}\._async_predicate is async"):
            bus.on("a", _noop, predicate=_async_predicate)
        assert bus.listener_count() == 0

    def test_async_call_is_refused(self, bus: EventBus) -> None:
        """An object with an async __call__ is refused as a predicate."""
        with pytest.raises(TypeError, match="is async"):
            bus.on("a", _noop, predicate=_AsyncCall())

    def test_sync_predicate_is_accepted(self, bus: EventBus) -> None:
        """A plain predicate is fine."""
        bus.on("a", _noop, predicate=lambda event: True)

        assert bus.listener_count() == 1


class _SubscribesWhileNamed:
    """A handler that, when on() reads its __qualname__ (to name it), runs
    ``action``: code run by on() itself, in the same thread, with the lock held."""

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action

    def __call__(self, event: Event) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        if name == "__qualname__":
            action, self.action = self.action, lambda: None  # once
            action()
        raise AttributeError(name)


class TestReentrantTableChanges:
    """Item 8: a change made by code that on() runs is not lost."""

    def test_subscription_made_meanwhile_is_kept(self, bus: EventBus) -> None:
        """A handler subscribed to the same key while on() builds its subscription stays."""
        handler = _SubscribesWhileNamed(lambda: bus.on("a", _noop))

        bus.on("a", handler)

        assert {info.callback for info in bus.listeners("a")} == {handler, _noop}

    def test_both_run(self, bus: EventBus) -> None:
        """Both handlers run."""
        handler = _SubscribesWhileNamed(lambda: bus.on("a", _noop))
        bus.on("a", handler)

        report = bus.emit_sync("a")

        assert {result.handler.callback for result in report.results} == {_noop, handler}

    def test_same_handler_subscribed_meanwhile_is_one(self, bus: EventBus) -> None:
        """If that code subscribes the same handler, there is still one subscription."""
        holder: list[_SubscribesWhileNamed] = []
        handler = _SubscribesWhileNamed(lambda: bus.on("a", holder[0]))
        holder.append(handler)

        bus.on("a", handler)

        assert bus.listener_count("a") == 1

    def test_removal_made_meanwhile_is_kept(self, bus: EventBus) -> None:
        """A handler unsubscribed while on() builds its subscription stays unsubscribed."""
        bus.on("a", _noop)
        handler = _SubscribesWhileNamed(lambda: bus.off("a", _noop))

        bus.on("a", handler)

        assert [info.callback for info in bus.listeners("a")] == [handler]

    def test_clear_made_meanwhile_is_kept(self, bus: EventBus) -> None:
        """A clear() made meanwhile keeps what it removed removed."""
        bus.on("a", _noop, owner="old")
        handler = _SubscribesWhileNamed(lambda: bus.clear(owner="old"))

        bus.on("a", handler)

        assert [info.callback for info in bus.listeners("a")] == [handler]


class _Temporary:
    def method(self, event: Event) -> None:
        pass


class _FailingLogger:
    """A logger every call of which raises."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        def fail(*args: object, **kwargs: object) -> None:
            raise RuntimeError("the log is down")

        return fail


def _unused_warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "eventbus.handler_collected_unused"]


class TestCollectedUnused:
    """Item 9: a weakly held handler collected before it ever ran is a warning."""

    def test_temporary_method_is_warned_about(self, bus: EventBus) -> None:
        """bus.on(name, Temporary().method) logs one warning naming the handler."""
        with structlog.testing.capture_logs() as logs:
            bus.on("a", _Temporary().method)
            gc.collect()

        [entry] = _unused_warnings(logs)
        assert entry["log_level"] == "warning"
        assert entry["handler"] == f"{__name__}._Temporary.method"

    def test_not_after_a_run(self, bus: EventBus) -> None:
        """A handler that ran once is collected silently."""
        temporary = _Temporary()
        bus.on("a", temporary.method)
        bus.emit_sync("a")

        with structlog.testing.capture_logs() as logs:
            del temporary
            gc.collect()

        assert _unused_warnings(logs) == []

    async def test_not_after_an_awaited_run(self, bus: EventBus) -> None:
        """A run through await bus.emit counts too."""
        temporary = _Temporary()
        bus.on("a", temporary.method)
        await bus.emit("a")

        with structlog.testing.capture_logs() as logs:
            del temporary
            gc.collect()

        assert _unused_warnings(logs) == []

    def test_false_predicate_is_not_a_run(self, bus: EventBus) -> None:
        """A handler whose predicate was always false is warned about."""
        temporary = _Temporary()
        bus.on("a", temporary.method, predicate=lambda event: False)
        bus.emit_sync("a")

        with structlog.testing.capture_logs() as logs:
            del temporary
            gc.collect()

        assert len(_unused_warnings(logs)) == 1

    def test_not_after_off(self, bus: EventBus) -> None:
        """An unsubscribed handler is collected silently."""
        temporary = _Temporary()
        bus.on("a", temporary.method)
        bus.off("a", temporary.method)

        with structlog.testing.capture_logs() as logs:
            del temporary
            gc.collect()

        assert _unused_warnings(logs) == []

    def test_builtin_method(self, bus: EventBus) -> None:
        """A deque's append collected before it ran is warned about, by name."""
        with structlog.testing.capture_logs() as logs:
            bus.on("a", collections.deque().append)
            gc.collect()

        [entry] = _unused_warnings(logs)
        assert entry["handler"] == "collections.deque.append"

    def test_logging_failure_goes_to_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A logger that fails does not raise from the weakref callback: stderr says so."""
        bus = EventBus(logger=_FailingLogger())
        bus.on("a", _Temporary().method)
        gc.collect()

        assert "could not log 'eventbus.handler_collected_unused'" in capsys.readouterr().err
        assert bus.listener_count() == 0


async def _async_audit(event: Event) -> None:
    pass


class TestEmitSyncRefusal:
    """Item 10: emit_sync in a loop's thread names the async handlers and their owners."""

    async def test_names_handler_and_owner(self, bus: EventBus) -> None:
        """The message names each async handler with its owner."""
        bus.on("*", _async_audit, owner="audit")

        with pytest.raises(RuntimeError, match=rf"\({__name__}\._async_audit \(owner 'audit'\)\)"):
            bus.emit_sync("sale.closed")

    async def test_without_owner(self, bus: EventBus) -> None:
        """A handler without owner is named alone."""
        bus.on("a", _async_audit)

        with pytest.raises(RuntimeError, match=rf"\({__name__}\._async_audit\)"):
            bus.emit_sync("a")

    async def test_says_what_to_use(self, bus: EventBus) -> None:
        """The message points to await bus.emit(...) and bus.publish(...)."""
        bus.on("a", _async_audit, owner="audit")

        with pytest.raises(RuntimeError, match=r"await bus\.emit\(\.\.\.\)` or `bus\.publish"):
            bus.emit_sync("a")

    async def test_nothing_runs(self, bus: EventBus) -> None:
        """No handler runs, not even the sync ones before the async one."""
        ran: list[Event] = []
        bus.on("a", ran.append, priority=1)
        bus.on("a", _async_audit, owner="audit")

        with pytest.raises(RuntimeError):
            bus.emit_sync("a")
        assert ran == []


class TestBuiltinMethodOfAClass:
    """Item 1, edge: a built-in method bound to a class (dict.fromkeys)."""

    def test_held_strongly_and_one_subscription(self, bus: EventBus) -> None:
        """It cannot be bound again weakly: held strongly, still one handler."""
        bus.on("a", dict.fromkeys)
        bus.on("a", dict.fromkeys)

        assert [info.weak for info in bus.listeners("a")] == [False]
        assert bus.off("a", dict.fromkeys) is True

    def test_weak_true_says_why(self, bus: EventBus) -> None:
        """weak=True is a TypeError that does not blame weak references of classes."""
        with pytest.raises(TypeError, match="cannot be bound again from its object's type"):
            bus.on("a", dict.fromkeys, weak=True)
