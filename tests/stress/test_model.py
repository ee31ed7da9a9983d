"""A stateful property-based test: random sequences of operations drive a bus
and a plain reference model side by side, and after every step the handlers
called, their order, each report, ``listeners``, ``listener_count``,
``has_listeners`` and ``topics`` must be the model's.

The model knows nothing of routes, caches or weak references: it is a list of
subscriptions and the rules of API.md applied to it, step by step.

Garbage collection is part of the model. The collector is disabled while a run
goes on, and the objects whose bound methods are subscribed hold a reference
cycle, so they die exactly when the machine runs ``gc.collect()``: in the
``collect_garbage`` rule, or just before another operation (``gc_first``), as
the real collector may run at any allocation.
"""

from __future__ import annotations

import asyncio
import gc
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from eventbus import EmitReport, Event, EventBus, HandlerInfo

NAMES = ("a", "a.b", "a.b.c", "b", "b.c")
PATTERNS = ("*", "a.*", "a.b.*", "b.*")
KEYS = NAMES + PATTERNS
# Concrete names below every key, used to decide by brute force whether a
# subscription key and a listeners() query can receive a common event.
UNIVERSE = (*NAMES, "a.b.c.d", "a.c", "b.c.d", "c")
OWNERS = (None, "o1", "o2")
PREDICATES = (None, "true", "false", "even", "raises")
FUNCTIONS = ("f1", "f2", "af", "boom")
SLOTS = 3
TARGET_KINDS = ("handle", "ahandle", "call")


class HandlerError(Exception):
    """What the ``boom`` handler raises."""


class PredicateError(Exception):
    """What the ``raises`` predicate raises."""


def matches(key: str, name: str) -> bool:
    """The reference rule for a key receiving a concrete name (API.md)."""
    if key == "*":
        return True
    if key.endswith(".*"):
        return name.startswith(key[:-1])
    return key == name


def overlaps(key: str, query: str) -> bool:
    return any(matches(key, name) and matches(query, name) for name in UNIVERSE)


class Target:
    """An object whose methods and whose instances are handlers.

    It holds a reference cycle, so only the garbage collector frees it.
    """

    def __init__(self, label: str, calls: list[str]) -> None:
        self.label = label
        self.calls = calls
        self.me = self

    def handle(self, event: Event) -> str:
        self.calls.append(f"{self.label}.handle")
        return f"{self.label}.handle"

    async def ahandle(self, event: Event) -> str:
        self.calls.append(f"{self.label}.ahandle")
        return f"{self.label}.ahandle"

    def __call__(self, event: Event) -> str:
        self.calls.append(f"{self.label}()")
        return f"{self.label}()"


def label_of(info: HandlerInfo) -> str:
    callback = info.callback
    if callback is None:
        return "<collected>"
    if isinstance(callback, types.MethodType):
        return f"{callback.__self__.label}.{callback.__func__.__name__}"
    if isinstance(callback, Target):
        return f"{callback.label}()"
    return callback.label  # type: ignore[no-any-return,union-attr]


@dataclass
class TargetModel:
    uid: int
    released: bool = False
    dead: bool = False


@dataclass
class Sub:
    key: str
    identity: tuple[object, ...]
    label: str
    priority: int
    once: bool
    predicate: str | None
    weak: bool
    owner: str | None
    order: int
    target: int | None  # uid of the Target it belongs to
    strong_target: bool = field(default=False)


def subscription_view(info: HandlerInfo) -> tuple[object, ...]:
    return (
        label_of(info),
        info.pattern,
        info.priority,
        info.once,
        info.weak,
        info.owner,
        info.has_predicate,
    )


def sub_view(sub: Sub) -> tuple[object, ...]:
    return (
        sub.label,
        sub.key,
        sub.priority,
        sub.once,
        sub.weak,
        sub.owner,
        sub.predicate is not None,
    )


def report_view(report: EmitReport) -> list[tuple[object, ...]]:
    return [
        (
            label_of(result.handler),
            result.handler.pattern,
            None if result.error is None else type(result.error).__name__,
            result.value,
        )
        for result in report.results
    ]


# The collector runs before an operation now and then (often before clear, where
# a subscription that died unnoticed must not be counted).
sometimes = st.sampled_from((False, False, False, True))
_target_choices = st.tuples(st.sampled_from(TARGET_KINDS), st.integers(0, SLOTS - 1))
handler_choices = st.one_of(st.sampled_from(FUNCTIONS), _target_choices, _target_choices)


class BusMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.gc_was_enabled = gc.isenabled()
        gc.disable()
        gc.freeze()  # what exists now is not this run's garbage: keeps gc.collect() fast
        self.bus = EventBus("model")
        self.runner = asyncio.Runner()
        self.calls: list[str] = []
        self.functions = {label: self._make_function(label) for label in FUNCTIONS}
        self.predicates = {label: self._make_predicate(label) for label in PREDICATES if label}
        self.targets: list[Target | None] = [None] * SLOTS
        self.target_models: dict[int, TargetModel] = {}
        self.uids = 0
        self.subs: list[Sub] = []
        self.order = 0
        self.mutes: list[tuple[str, ...]] = []
        self.mute_exits: list[Any] = []

    # ------------------------------------------------------------ the pool of callables

    def _make_function(self, label: str) -> Callable[[Event], Any]:
        calls = self.calls
        if label == "af":

            async def async_handler(event: Event) -> str:
                calls.append(label)
                return label

            handler: Any = async_handler
        elif label == "boom":

            def failing(event: Event) -> str:
                calls.append(label)
                raise HandlerError(label)

            handler = failing
        else:

            def sync_handler(event: Event) -> str:
                calls.append(label)
                return label

            handler = sync_handler
        handler.label = label
        return handler  # type: ignore[no-any-return]

    def _make_predicate(self, label: str) -> Callable[[Event], bool]:
        def predicate(event: Event) -> bool:
            if label == "raises":
                raise PredicateError(label)
            if label == "even":
                return event["n"] % 2 == 0
            return label == "true"

        return predicate

    def _resolve(
        self, choice: str | tuple[str, int]
    ) -> tuple[Any, tuple[object, ...], str, int | None]:
        """(handler, identity, label, target uid) for a handler choice; makes the
        Target of an empty slot."""
        if isinstance(choice, str):
            return self.functions[choice], ("function", choice), choice, None
        kind, slot = choice
        target = self.targets[slot]
        if target is None:
            self.uids += 1
            target = Target(f"t{self.uids}", self.calls)
            self.targets[slot] = target
            self.target_models[self.uids] = TargetModel(self.uids)
        uid = int(target.label[1:])
        if kind == "call":
            return target, ("call", uid), f"{target.label}()", uid
        return getattr(target, kind), (kind, uid), f"{target.label}.{kind}", uid

    # ------------------------------------------------------------ the model's rules

    def _collect_garbage(self) -> None:
        gc.collect()
        for uid, model in self.target_models.items():
            held = any(sub.target == uid and sub.strong_target for sub in self.subs)
            if model.released and not model.dead and not held:
                model.dead = True
                self.subs = [sub for sub in self.subs if sub.target != uid]

    def _maybe_collect(self, gc_first: bool) -> None:
        if gc_first:
            self._collect_garbage()

    def _muted(self, name: str) -> bool:
        return any(
            not patterns or any(matches(p, name) for p in patterns) for patterns in self.mutes
        )

    def _model_listeners(self, query: str) -> list[Sub]:
        found = [sub for sub in self.subs if overlaps(sub.key, query)]
        return sorted(found, key=lambda sub: (-sub.priority, sub.order))

    def _model_emit(self, name: str, n: int) -> tuple[list[tuple[object, ...]], list[str]]:
        """The expected report rows and handler calls of one emission."""
        if self._muted(name):
            return [], []
        snapshot = sorted(
            (sub for sub in self.subs if matches(sub.key, name)),
            key=lambda sub: (-sub.priority, sub.order),
        )
        rows: list[tuple[object, ...]] = []
        calls: list[str] = []
        for sub in snapshot:
            if sub.predicate == "raises":
                rows.append((sub.label, sub.key, "PredicateError", None))
                continue
            if sub.predicate == "false" or (sub.predicate == "even" and n % 2):
                continue
            if sub.once:
                self.subs.remove(sub)
            calls.append(sub.label)
            if sub.label == "boom":
                rows.append((sub.label, sub.key, "HandlerError", None))
            else:
                rows.append((sub.label, sub.key, None, sub.label))
        return rows, calls

    def _check_report(self, report: EmitReport, name: str, n: int) -> None:
        rows, calls = self._model_emit(name, n)
        assert report.event.name == name
        assert dict(report.event.payload) == {"n": n}
        assert report_view(report) == rows
        assert report.ok == all(row[2] is None for row in rows)
        assert report.values == tuple(row[3] for row in rows if row[2] is None)
        assert self.calls == calls
        self.calls.clear()

    # ------------------------------------------------------------ rules

    @initialize()
    def start_empty(self) -> None:
        assert self.bus.listener_count() == 0

    @rule(
        key=st.sampled_from(KEYS),
        choice=handler_choices,
        priority=st.integers(-2, 2),
        once=st.booleans(),
        predicate=st.sampled_from(PREDICATES),
        weak=st.sampled_from((None, True, False)),
        owner=st.sampled_from(OWNERS),
        how=st.sampled_from(("on", "once", "decorator")),
        keep=st.booleans(),
        gc_first=sometimes,
    )
    def subscribe(
        self,
        key: str,
        choice: str | tuple[str, int],
        priority: int,
        once: bool,
        predicate: str | None,
        weak: bool | None,
        owner: str | None,
        how: str,
        keep: bool,
        gc_first: bool,
    ) -> None:
        """Subscribe; with ``keep=False`` the program then drops its own reference
        to the handler's object, as in ``bus.on("a", Listener().handle)``."""
        self._maybe_collect(gc_first)
        handler, identity, label, uid = self._resolve(choice)
        options: dict[str, Any] = {
            "priority": priority,
            "predicate": None if predicate is None else self.predicates[predicate],
            "weak": weak,
            "owner": owner,
        }
        if how == "once":
            once = True
            returned = self.bus.once(key, handler, **options)
        elif how == "decorator":
            returned = self.bus.on(key, once=once, **options)(handler)
        else:
            returned = self.bus.on(key, handler, once=once, **options)
        assert returned == handler
        del returned, handler
        if uid is not None and not keep:
            self._release(choice[1])

        if any(sub.key == key and sub.identity == identity for sub in self.subs):
            return  # the same handler under the same key: a no-op
        is_method = identity[0] in ("handle", "ahandle")
        held_weakly = weak is not False if is_method else weak is True
        self.order += 1
        self.subs.append(
            Sub(
                key,
                identity,
                label,
                priority,
                once,
                predicate,
                held_weakly,
                owner,
                self.order,
                uid,
                strong_target=uid is not None and not held_weakly,
            )
        )

    @rule(key=st.sampled_from(KEYS), choice=handler_choices, gc_first=sometimes)
    def unsubscribe(self, key: str, choice: str | tuple[str, int], gc_first: bool) -> None:
        self._maybe_collect(gc_first)
        handler, identity, _, _ = self._resolve(choice)
        found = [sub for sub in self.subs if sub.key == key and sub.identity == identity]

        assert self.bus.off(key, handler) is bool(found)
        for sub in found:
            self.subs.remove(sub)

    @rule(
        key=st.none() | st.sampled_from(KEYS),
        owner=st.sampled_from(OWNERS),
        gc_first=st.sampled_from((True, True, False)),
    )
    def clear(self, key: str | None, owner: str | None, gc_first: bool) -> None:
        self._maybe_collect(gc_first)
        doomed = [
            sub
            for sub in self.subs
            if (key is None or sub.key == key) and (owner is None or sub.owner == owner)
        ]

        assert self.bus.clear(key, owner=owner) == len(doomed)
        self.subs = [sub for sub in self.subs if sub not in doomed]

    @precondition(lambda self: len(self.mutes) < 3)
    @rule(patterns=st.lists(st.sampled_from(KEYS), max_size=2).map(tuple))
    def mute(self, patterns: tuple[str, ...]) -> None:
        block = self.bus.muted(*patterns)
        block.__enter__()
        self.mute_exits.append(block)
        self.mutes.append(patterns)

    @precondition(lambda self: bool(self.mutes))
    @rule()
    def unmute(self) -> None:
        self.mute_exits.pop().__exit__(None, None, None)
        self.mutes.pop()

    @rule(
        name=st.sampled_from(NAMES),
        n=st.integers(0, 3),
        how=st.sampled_from(("emit", "emit_sync")),
        gc_first=sometimes,
    )
    def emit(self, name: str, n: int, how: str, gc_first: bool) -> None:
        self._maybe_collect(gc_first)
        if how == "emit":
            report = self.runner.run(self.bus.emit(name, n=n))
        else:
            report = self.bus.emit_sync(name, n=n)
        self._check_report(report, name, n)

    @rule(
        emissions=st.lists(
            st.tuples(st.sampled_from(NAMES), st.integers(0, 3)), min_size=1, max_size=3
        ),
        gc_first=sometimes,
    )
    def publish_and_drain(self, emissions: list[tuple[str, int]], gc_first: bool) -> None:
        self._maybe_collect(gc_first)

        async def publish_all() -> list[EmitReport]:
            tasks = [self.bus.publish(name, n=n) for name, n in emissions]
            await self.bus.drain()
            assert all(task.done() for task in tasks)
            return [task.result() for task in tasks]

        reports = self.runner.run(publish_all())
        # Handlers here never suspend, so each published emission runs whole, in order.
        calls = list(self.calls)
        self.calls.clear()
        for report, (name, n) in zip(reports, emissions, strict=True):
            rows, expected_calls = self._model_emit(name, n)
            assert report_view(report) == rows
            assert calls[: len(expected_calls)] == expected_calls
            del calls[: len(expected_calls)]
        assert calls == []

    @rule(slot=st.integers(0, SLOTS - 1))
    def release_target(self, slot: int) -> None:
        """The program drops its own reference to an object: it lives on until
        the collector runs, and after that only if a strong subscription holds it."""
        self._release(slot)

    def _release(self, slot: int) -> None:
        target = self.targets[slot]
        if target is not None:
            self.targets[slot] = None
            self.target_models[int(target.label[1:])].released = True

    @rule()
    def collect_garbage(self) -> None:
        self._collect_garbage()

    # ------------------------------------------------------------ after every step

    @invariant()
    def introspection_matches_the_model(self) -> None:
        assert self.calls == []
        assert self.bus.listener_count() == len(self.subs)
        assert self.bus.topics() == tuple(sorted({sub.key for sub in self.subs}))
        for query in KEYS:
            expected = self._model_listeners(query)
            assert [subscription_view(i) for i in self.bus.listeners(query)] == [
                sub_view(sub) for sub in expected
            ], query
            assert self.bus.listener_count(query) == len(expected)
            assert self.bus.has_listeners(query) is bool(expected)

    def teardown(self) -> None:
        try:
            while self.mute_exits:
                self.mute_exits.pop().__exit__(None, None, None)
            self.runner.close()
        finally:
            gc.unfreeze()
            if self.gc_was_enabled:
                gc.enable()


def test_matches_model() -> None:
    """Bus matches the reference model."""
    run_state_machine_as_test(
        BusMachine,
        settings=settings(max_examples=150, stateful_step_count=40, deadline=None),
    )


@pytest.mark.heavy
def test_matches_model_many() -> None:
    """The bus matches the reference model over many long runs."""
    run_state_machine_as_test(
        BusMachine,
        settings=settings(max_examples=1500, stateful_step_count=80, deadline=None),
    )


# ---------------------------------------------------------------- regressions the model found


class _Listener:
    def handle(self, event: Event) -> None:
        return None


def test_clear_skips_collected(bus: EventBus) -> None:
    """clear does not count subscriptions whose object was collected.

    A collected subscription has disappeared: ``clear`` must not count it
    as dropped, whether or not introspection ran in between."""
    listener = _Listener()
    bus.on("a", listener.handle)
    bus.on("a", _Listener().handle)  # collected at once
    del listener
    gc.collect()

    assert bus.clear() == 0
    assert bus.listener_count() == 0
