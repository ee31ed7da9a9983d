"""How subscriptions hold their handlers: weak bound methods, strong everything
else, and what happens when a weakly held handler is garbage-collected."""

from __future__ import annotations

import functools
import gc
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from emitters import Emitter

from eventbus import Event, EventBus


class Listener:
    def __init__(self, log: list[str] | None = None, label: str = "listener") -> None:
        self.log = log if log is not None else []
        self.label = label

    def handle(self, event: Event) -> str:
        self.log.append(self.label)
        return self.label

    async def handle_async(self, event: Event) -> str:
        self.log.append(self.label)
        return self.label

    def __call__(self, event: Event) -> str:
        self.log.append(f"{self.label}()")
        return f"{self.label}()"


class Slotted:
    """Its instances cannot be weakly referenced."""

    __slots__ = ("log",)

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def handle(self, event: Event) -> str:
        self.log.append("slotted")
        return "slotted"


class SlottedWithWeakref:
    __slots__ = ("__weakref__", "log")

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def handle(self, event: Event) -> str:
        self.log.append("slotted-weakref")
        return "slotted-weakref"


class SlottedCallable:
    """A callable that cannot be weakly referenced."""

    __slots__ = ()

    def __call__(self, event: Event) -> str:
        return "slotted callable"


def _state(bus: EventBus) -> tuple[object, ...]:
    return bus.topics(), bus.listener_count(), bus.describe()


# ---------------------------------------------------------------- bound methods: weak by default


class TestBoundMethods:
    def test_bound_method_weak(self, bus: EventBus) -> None:
        """Bound method subscription does not keep its object alive."""
        listener = Listener()
        bus.on("a", listener.handle)
        ref = weakref.ref(listener)

        del listener
        gc.collect()

        assert ref() is None

    def test_collected_disappears(self, bus: EventBus) -> None:
        """Collected bound method disappears from introspection."""
        listener = Listener()
        bus.on("a", listener.handle)
        bus.on("user.*", listener.handle)
        assert bus.listener_count() == 2

        del listener
        gc.collect()

        assert bus.listeners("a") == ()
        assert bus.listeners("*") == ()
        assert bus.listener_count() == 0
        assert bus.listener_count("a") == 0
        assert bus.listener_count("user.login") == 0
        assert not bus.has_listeners("a")
        assert not bus.has_listeners("user.*")
        assert bus.topics() == ()
        assert bus.describe() == []

    def test_collected_after_cache(self, bus: EventBus) -> None:
        """A collected bound method disappears even after has_listeners was cached."""
        listener = Listener()
        bus.on("a", listener.handle)
        assert bus.has_listeners("a")
        bus.emit_sync("a")  # the bus may cache what it resolved for "a"

        del listener
        gc.collect()

        assert not bus.has_listeners("a")

    def test_collected_not_called(self, bus: EventBus) -> None:
        """Collected bound method is not called."""
        log: list[str] = []
        listener = Listener(log)
        bus.on("a", listener.handle)
        bus.emit_sync("a")  # resolved once while alive

        del listener
        gc.collect()
        report = bus.emit_sync("a")

        assert log == ["listener"]
        assert report.results == ()
        assert report.ok

    async def test_collected_not_awaited(self, bus: EventBus) -> None:
        """Collected async bound method is not awaited."""
        log: list[str] = []
        listener = Listener(log)
        bus.on("a", listener.handle_async)
        ref = weakref.ref(listener)

        del listener
        gc.collect()
        report = await bus.emit("a")

        assert ref() is None
        assert log == []
        assert report.results == ()

    def test_others_survive(self, bus: EventBus) -> None:
        """Other subscriptions survive a collected bound method."""
        log: list[str] = []
        doomed, kept = Listener(log, "doomed"), Listener(log, "kept")
        bus.on("a", doomed.handle)
        bus.on("a", kept.handle)
        bus.on("a", lambda event: log.append("lambda"))

        del doomed
        gc.collect()
        bus.emit_sync("a")

        assert log == ["kept", "lambda"]
        assert bus.listener_count() == 2

    def test_collected_info_callback(self, bus: EventBus) -> None:
        """HandlerInfo of a collected method has no callback."""
        listener = Listener()
        bus.on("a", listener.handle)
        (info,) = bus.listeners("a")
        assert info.weak is True
        assert info.callback == listener.handle

        del listener
        gc.collect()

        assert info.callback is None

    def test_live_method_called(self, bus: EventBus) -> None:
        """Live bound method keeps being called."""
        log: list[str] = []
        listener = Listener(log)
        bus.on("a", listener.handle)

        gc.collect()
        bus.emit_sync("a")
        gc.collect()
        bus.emit_sync("a")

        assert log == ["listener", "listener"]

    def test_weak_is_default(self, bus: EventBus) -> None:
        """``weak=True`` on a bound method is the default."""
        listener = Listener()
        bus.on("a", listener.handle, weak=True)
        ref = weakref.ref(listener)
        assert bus.listeners("a")[0].weak is True

        del listener
        gc.collect()

        assert ref() is None
        assert bus.listener_count() == 0

    def test_resubscribe_after_collect(self, bus: EventBus) -> None:
        """A new object may reuse the collected one's address: it must not be
        mistaken for the old (dead) subscription."""
        first = Listener([], "first")
        bus.on("a", first.handle, priority=1)
        del first
        gc.collect()

        log: list[str] = []
        second = Listener(log, "second")
        bus.on("a", second.handle, priority=2)

        assert [info.priority for info in bus.listeners("a")] == [2]
        assert bus.emit_sync("a").values == ("second",)
        assert log == ["second"]


# ---------------------------------------------------------------- weak=False


class TestStrong:
    def test_keeps_alive(self, bus: EventBus) -> None:
        """``weak=False`` keeps the object alive and called."""
        log: list[str] = []
        listener = Listener(log)
        bus.on("a", listener.handle, weak=False)
        ref = weakref.ref(listener)

        del listener
        gc.collect()
        report = bus.emit_sync("a")

        assert ref() is not None
        assert log == ["listener"]
        assert report.values == ("listener",)
        assert bus.listeners("a")[0].weak is False

    def test_released_by_off(self, bus: EventBus) -> None:
        """``weak=False`` object is released after off."""
        listener = Listener()
        bus.on("a", listener.handle, weak=False)
        ref = weakref.ref(listener)

        assert bus.off("a", listener.handle) is True
        del listener
        gc.collect()

        assert ref() is None

    def test_released_by_clear(self, bus: EventBus) -> None:
        """``weak=False`` object is released after clear."""
        listener = Listener()
        bus.on("a", listener.handle, weak=False)
        ref = weakref.ref(listener)

        assert bus.clear() == 1
        del listener
        gc.collect()

        assert ref() is None


# ---------------------------------------------------------------- inline callables: strong


def _subscribe_inline(bus: EventBus, log: list[str]) -> None:
    """Subscribe callables that nothing but the bus references afterwards."""

    def closure(event: Event) -> str:
        log.append("closure")
        return "closure"

    def labelled(label: str, event: Event) -> str:
        log.append(label)
        return label

    bus.on("a", lambda event: log.append("lambda") or "lambda")
    bus.on("a", closure)
    bus.on("a", functools.partial(labelled, "partial"))
    bus.on("a", Listener(log, "object"))


class TestInline:
    def test_callables(self, bus: EventBus) -> None:
        """Inline callables keep working after garbage collection."""
        log: list[str] = []
        _subscribe_inline(bus, log)

        gc.collect()
        report = bus.emit_sync("a")

        assert log == ["lambda", "closure", "partial", "object()"]
        assert report.values == ("lambda", "closure", "partial", "object()")
        assert bus.listener_count() == 4
        assert [info.weak for info in bus.listeners("a")] == [False] * 4

    async def test_async_callables(self, bus: EventBus) -> None:
        """Inline async callables keep working after garbage collection."""
        log: list[str] = []

        def subscribe() -> None:
            async def closure(event: Event) -> str:
                log.append("async closure")
                return "async closure"

            bus.on("a", closure)
            bus.on("a", functools.partial(Listener.handle_async, Listener(log, "unbound")))

        subscribe()
        gc.collect()
        report = await bus.emit("a")

        assert report.values == ("async closure", "unbound")

    def test_object_collected(self, bus: EventBus) -> None:
        """The documented price of weak bound methods: nothing else holds the object."""
        bus.on("a", Listener().handle)

        gc.collect()

        assert bus.listener_count() == 0
        assert bus.emit_sync("a").results == ()


# ---------------------------------------------------------------- weak=True on other callables


class TestWeakTrue:
    def test_function(self, bus: EventBus) -> None:
        """``weak=True`` plain function is collected when deleted."""
        log: list[str] = []

        def handler(event: Event) -> None:
            log.append("called")

        bus.on("a", handler, weak=True)
        assert bus.listeners("a")[0].weak is True
        bus.emit_sync("a")
        ref = weakref.ref(handler)

        del handler
        gc.collect()

        assert ref() is None
        assert bus.listener_count() == 0
        assert bus.topics() == ()
        assert bus.emit_sync("a").results == ()
        assert log == ["called"]

    def test_callable_object(self, bus: EventBus) -> None:
        """``weak=True`` callable object is collected when deleted."""
        log: list[str] = []
        handler = Listener(log)
        bus.on("a", handler, weak=True)
        ref = weakref.ref(handler)

        del handler
        gc.collect()

        assert ref() is None
        assert bus.listener_count() == 0
        assert log == []

    def test_function_alive(self, bus: EventBus) -> None:
        """``weak=True`` function still runs while alive."""
        log: list[str] = []

        def handler(event: Event) -> str:
            log.append("called")
            return "ok"

        bus.on("a", handler, weak=True)
        gc.collect()

        assert bus.emit_sync("a").values == ("ok",)
        assert log == ["called"]

    @pytest.mark.parametrize(
        "builtin", [print, len, [].append, "abc".startswith, {}.get], ids=lambda b: repr(b)[:30]
    )
    def test_builtin(self, bus: EventBus, builtin: Callable[..., Any]) -> None:
        """``weak=True`` on a builtin raises TypeError."""
        bus.on("keep", lambda event: None)
        before = _state(bus)

        with pytest.raises(TypeError, match="weak"):
            bus.on("a", builtin, weak=True)

        assert _state(bus) == before

    def test_not_weakrefable(self, bus: EventBus) -> None:
        """``weak=True`` on a non-weakref-able callable raises TypeError."""
        before = _state(bus)

        with pytest.raises(TypeError, match="weak"):
            bus.on("a", SlottedCallable(), weak=True)

        assert _state(bus) == before

    @pytest.mark.parametrize("builtin", [print, len, [].append])
    def test_builtins_strong(self, bus: EventBus, builtin: Callable[..., Any]) -> None:
        """Builtins are held strongly by default."""
        bus.on("a", builtin)

        assert bus.listeners("a")[0].weak is False


# ---------------------------------------------------------------- slotted objects (decision 19)


class TestSlotted:
    def test_strong(self, bus: EventBus) -> None:
        """Bound method of a slotted object is held strongly by default."""
        log: list[str] = []
        obj = Slotted(log)
        bus.on("a", obj.handle)

        del obj
        gc.collect()
        report = bus.emit_sync("a")

        assert bus.listeners("a")[0].weak is False
        assert report.values == ("slotted",)
        assert log == ["slotted"]

    def test_weak_refused(self, bus: EventBus) -> None:
        """Bound method of a slotted object with ``weak=True`` raises TypeError."""
        bus.on("keep", lambda event: None)
        before = _state(bus)

        with pytest.raises(TypeError, match=r"weak.*Slotted|Slotted.*weak"):
            bus.on("a", Slotted([]).handle, weak=True)

        assert _state(bus) == before

    def test_weakref_slot(self, bus: EventBus) -> None:
        """Bound method of a slotted object with a weakref slot is held weakly."""
        obj = SlottedWithWeakref([])
        bus.on("a", obj.handle)
        ref = weakref.ref(obj)
        assert bus.listeners("a")[0].weak is True

        del obj
        gc.collect()

        assert ref() is None
        assert bus.listener_count() == 0

    def test_off_slotted_strong(self, bus: EventBus) -> None:
        """Off works for a strongly held slotted method."""
        obj = Slotted([])
        bus.on("a", obj.handle)

        assert bus.off("a", obj.handle) is True
        assert bus.listener_count() == 0


# ---------------------------------------------------------------- collected during an emission


def _collect_during_emission(bus: EventBus) -> tuple[list[str], weakref.ref[Listener]]:
    """Handler 1 drops the last reference to handler 2's object and collects it."""
    log: list[str] = []
    holder = [Listener(log, "second")]
    ref = weakref.ref(holder[0])

    def first(event: Event) -> str:
        log.append("first")
        holder.clear()
        gc.collect()
        return "first"

    bus.on("a", first, priority=1)
    bus.on("a", holder[0].handle)
    bus.on("a", lambda event: log.append("third") or "third", priority=-1)
    return log, ref


class TestCollectedMidEmission:
    async def test_mid_emission(self, bus: EventBus, emit: Emitter) -> None:
        """Object collected during emission is skipped."""
        log, ref = _collect_during_emission(bus)

        report = await emit(bus, "a")

        assert ref() is None
        assert log == ["first", "third"]
        assert report.values == ("first", "third")
        assert report.ok
        assert bus.listener_count() == 2

    async def test_stays_gone(self, bus: EventBus) -> None:
        """Object collected during an earlier emission stays gone."""
        log, _ = _collect_during_emission(bus)

        await bus.emit("a")
        await bus.emit("a")

        assert log == ["first", "third", "first", "third"]


# ---------------------------------------------------------------- identity of bound methods


class TestMethodIdentity:
    def test_two_objects(self, bus: EventBus) -> None:
        """Same method of two objects is two subscriptions."""
        log: list[str] = []
        one, two = Listener(log, "one"), Listener(log, "two")
        bus.on("a", one.handle)
        bus.on("a", two.handle)

        report = bus.emit_sync("a")

        assert bus.listener_count() == 2
        assert log == ["one", "two"]
        assert report.values == ("one", "two")

    def test_one_of_two_collected(self, bus: EventBus) -> None:
        """Collecting one of two objects keeps the other."""
        log: list[str] = []
        one, two = Listener(log, "one"), Listener(log, "two")
        bus.on("a", one.handle)
        bus.on("a", two.handle)

        del one
        gc.collect()
        bus.emit_sync("a")

        assert bus.listener_count() == 1
        assert log == ["two"]

    def test_off_fresh_method(self, bus: EventBus) -> None:
        """Off with a fresh bound method expression unsubscribes."""
        log: list[str] = []
        listener = Listener(log)
        bus.on("a", listener.handle)

        assert bus.off("a", listener.handle) is True
        bus.emit_sync("a")

        assert log == []
        assert bus.listener_count() == 0

    def test_off_fresh_strong(self, bus: EventBus) -> None:
        """off with a fresh bound method of a strong subscription unsubscribes it."""
        listener = Listener()
        bus.on("a", listener.handle, weak=False)

        assert bus.off("a", listener.handle) is True
        assert bus.listener_count() == 0

    def test_off_other_object(self, bus: EventBus) -> None:
        """Off with the same method of another object returns false."""
        one, two = Listener(), Listener()
        bus.on("a", one.handle)

        assert bus.off("a", two.handle) is False
        assert bus.listener_count() == 1

    def test_off_after_collect(self, bus: EventBus) -> None:
        """Off after the object was collected returns false."""
        listener = Listener()
        bus.on("a", listener.handle)
        del listener
        gc.collect()

        assert bus.off("a", Listener().handle) is False

    def test_subscribed_method(self, bus: EventBus) -> None:
        """Subscribed with a bound method unsubscribes at exit."""
        log: list[str] = []
        listener = Listener(log)

        with bus.subscribed("a", listener.handle):
            bus.emit_sync("a")
        bus.emit_sync("a")

        assert log == ["listener"]
        assert bus.listener_count() == 0


# ---------------------------------------------------------------- bound-method predicates


class Picky:
    """A listener whose predicate is one of its own methods."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def handle(self, event: Event) -> str:
        self.log.append("handled")
        return "handled"

    def wanted(self, event: Event) -> bool:
        return True


class TestMethodPredicates:
    def test_weak(self, bus: EventBus) -> None:
        """A bound-method predicate does not keep a weakly held handler's object alive.

        Regression: a bound-method predicate kept a weakly held handler's object alive.
        """
        picky = Picky([])
        ref = weakref.ref(picky)
        bus.on("a", picky.handle, predicate=picky.wanted)
        assert bus.listeners("a")[0].weak is True

        del picky
        gc.collect()

        assert ref() is None
        assert bus.listener_count() == 0
        assert bus.topics() == ()

    def test_collected(self, bus: EventBus) -> None:
        """Subscription disappears when its predicates object is collected.

        Regression: a weak handler's bound-method predicate was held strongly.
        """
        log: list[str] = []
        handler_owner = Picky(log)
        predicate_owner = Picky([])
        predicate_ref = weakref.ref(predicate_owner)
        bus.on("a", handler_owner.handle, predicate=predicate_owner.wanted)
        assert bus.emit_sync("a").values == ("handled",)

        del predicate_owner
        gc.collect()
        report = bus.emit_sync("a")

        assert predicate_ref() is None
        assert report.results == ()
        assert log == ["handled"]
        assert bus.listener_count() == 0
        assert bus.listeners("a") == ()
