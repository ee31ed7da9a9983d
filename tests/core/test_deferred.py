"""``bus.deferred()`` and ``bus.defer``: emissions checked at once, held while
a block runs, emitted once it succeeded, discarded if it raised.

Behaviour shared by ``with`` and ``async with`` scopes is parametrized over
both (``scoped``); the sync scope runs in a worker thread, as sync code with
async handlers would.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import threading
import traceback
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from emitters import HANG_GUARD

import eventbus
from eventbus import (
    BusClosedError,
    DeferredScope,
    Event,
    EventBus,
    PayloadError,
    Topic,
    UnknownEventError,
)

SCOPES = ("with", "async with")
PACKAGE = str(Path(eventbus.__file__).parent)


class Scoped:
    """Run a block inside a scope of a bus, one way or the other:
    ``scope = await scoped(bus, body)``; whatever ``body`` raises propagates."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __repr__(self) -> str:
        return f"Scoped({self.mode!r})"

    async def __call__(self, bus: EventBus, body: Callable[[], object]) -> DeferredScope:
        if self.mode == "async with":
            async with bus.deferred() as scope:
                body()
            return scope

        def block() -> DeferredScope:
            with bus.deferred() as scope:
                body()
            return scope

        return await asyncio.wait_for(asyncio.to_thread(block), HANG_GUARD)


@pytest.fixture(params=SCOPES)
def scoped(request: pytest.FixtureRequest) -> Scoped:
    return Scoped(request.param)


def recording(bus: EventBus, *names: str) -> list[tuple[str, dict[str, Any]]]:
    """Subscribe a handler to each name that notes what it received."""
    seen: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        bus.on(name, lambda event: seen.append((event.name, dict(event.payload))))
    return seen


def discards(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "eventbus.deferred_discarded"]


class Boom(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class TillClosed:
    till_id: int


TILL_CLOSED = Topic("till.closed", TillClosed)


# ---------------------------------------------------------------- success


class TestSuccess:
    async def test_held_until_the_block_succeeds(self, bus: EventBus, scoped: Scoped) -> None:
        """A deferred emission runs no handler inside the block, and runs once it exits."""
        seen = recording(bus, "sale.closed")
        inside: list[int] = []

        def body() -> None:
            bus.defer("sale.closed", sale_id=7)
            inside.append(len(seen))

        await scoped(bus, body)

        assert inside == [0]
        assert seen == [("sale.closed", {"sale_id": 7})]

    async def test_run_in_the_order_deferred(self, bus: EventBus, scoped: Scoped) -> None:
        """Several held emissions run in the order they were deferred."""
        seen = recording(bus, "a", "b", "c")

        def body() -> None:
            bus.defer("b", n=1)
            bus.defer("a", n=2)
            bus.defer("c", n=3)
            bus.defer("a", n=4)

        await scoped(bus, body)

        assert seen == [("b", {"n": 1}), ("a", {"n": 2}), ("c", {"n": 3}), ("a", {"n": 4})]

    async def test_reports_list_the_emissions(self, bus: EventBus, scoped: Scoped) -> None:
        """scope.reports holds each held emission's report, in order, with its source."""
        bus.on("a", lambda event: event["n"] * 10)

        def body() -> None:
            bus.defer("a", source="till", n=1)
            bus.defer("a", n=2)

        scope = await scoped(bus, body)

        assert [report.values for report in scope.reports] == [(10,), (20,)]
        assert [report.event.source for report in scope.reports] == ["till", None]
        assert all(report.event.depth == 0 for report in scope.reports)

    async def test_reports_empty_before_exit(self, bus: EventBus) -> None:
        """Inside the block, nothing has run yet: reports is empty."""
        bus.on("a", lambda event: None)
        async with bus.deferred() as scope:
            bus.defer("a")
            assert scope.reports == ()
        assert len(scope.reports) == 1

    async def test_empty_scope_runs_nothing(self, bus: EventBus, scoped: Scoped) -> None:
        """A scope in which nothing was deferred has no reports."""
        scope = await scoped(bus, lambda: None)
        assert scope.reports == ()

    async def test_async_scope_awaits_async_handlers(self, bus: EventBus) -> None:
        """async with awaits each held emission: its async handlers have finished at exit."""
        done: list[str] = []

        async def handler(event: Event) -> None:
            await asyncio.sleep(0)
            done.append(event.name)

        bus.on("a", handler)
        async with bus.deferred():
            bus.defer("a")
        assert done == ["a"]

    async def test_sync_scope_off_loop_runs_async_handlers(self, bus: EventBus) -> None:
        """with, outside a running loop, runs async handlers as emit_sync does."""
        done: list[str] = []

        async def handler(event: Event) -> None:
            await asyncio.sleep(0)
            done.append(event.name)

        bus.on("a", handler)
        bus.bind()

        def block() -> DeferredScope:
            with bus.deferred() as scope:
                bus.defer("a")
            return scope

        scope = await asyncio.wait_for(asyncio.to_thread(block), HANG_GUARD)
        assert done == ["a"]
        assert scope.reports[0].ok

    async def test_handler_failure_is_isolated(self, bus: EventBus, scoped: Scoped) -> None:
        """A failing handler of a held emission is reported, as with emit; the
        next held emissions still run and the exit raises nothing."""
        seen = recording(bus, "b")

        def fail(event: Event) -> None:
            raise Boom("no ledger")

        bus.on("a", fail)

        def body() -> None:
            bus.defer("a")
            bus.defer("b")

        scope = await scoped(bus, body)

        assert [report.failed for report in scope.reports] == [1, 0]
        assert isinstance(scope.reports[0].errors[0].error, Boom)
        assert seen == [("b", {})]


# ---------------------------------------------------------------- failure


class TestDiscard:
    async def test_discarded_when_the_block_raises(self, bus: EventBus, scoped: Scoped) -> None:
        """When the block raises, no held emission runs and the exception propagates."""
        seen = recording(bus, "a")

        def body() -> None:
            bus.defer("a")
            raise Boom("rolled back")

        with pytest.raises(Boom, match="rolled back"):
            await scoped(bus, body)
        assert seen == []

    async def test_discard_is_logged_without_payload(self, bus: EventBus, scoped: Scoped) -> None:
        """The discard is logged at info with the count and the names, never a payload value."""

        def body() -> None:
            bus.defer("a", secret="hunter2")
            bus.defer("b", secret="hunter2")
            raise Boom

        with structlog.testing.capture_logs() as logs, pytest.raises(Boom):
            await scoped(bus, body)

        [entry] = discards(logs)
        assert entry["log_level"] == "info"
        assert entry["count"] == 2
        assert entry["names"] == ["a", "b"]
        assert entry["bus"] == "test"
        assert "hunter2" not in repr(logs)

    async def test_nothing_held_nothing_logged(self, bus: EventBus, scoped: Scoped) -> None:
        """A failing block that deferred nothing logs no discard."""

        def body() -> None:
            raise Boom

        with structlog.testing.capture_logs() as logs, pytest.raises(Boom):
            await scoped(bus, body)
        assert discards(logs) == []

    async def test_cancelled_block_discards(self, bus: EventBus) -> None:
        """A block cancelled while it waits discards what it held."""
        seen = recording(bus, "a")
        entered = asyncio.Event()

        async def block() -> None:
            async with bus.deferred():
                bus.defer("a")
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(block())
        await asyncio.wait_for(entered.wait(), HANG_GUARD)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == []


# ---------------------------------------------------------------- checks at defer


class TestChecksAtOnce:
    def test_no_open_scope(self, bus: EventBus) -> None:
        """defer with no open scope is a RuntimeError."""
        with pytest.raises(RuntimeError, match=r"needs an open `bus.deferred\(\)` scope"):
            bus.defer("a")

    def test_scope_of_another_bus(self, bus: EventBus) -> None:
        """bus2.defer inside bus1.deferred() finds no scope of bus2."""
        other = EventBus("other")
        with bus.deferred(), pytest.raises(RuntimeError, match="'other'"):
            other.defer("a")

    def test_strict_unknown_name(self) -> None:
        """On a strict bus an undeclared name raises at defer, with nothing held."""
        bus = EventBus("strict", strict=True)
        bus.declare("sale.closed")
        with bus.deferred() as scope, pytest.raises(UnknownEventError, match=r"sale\.closed"):
            bus.defer("sale.closd")
        assert scope.reports == ()

    def test_bad_payload(self, bus: EventBus) -> None:
        """A payload that fails its declaration raises PayloadError at defer."""
        bus.declare("sale.closed", payload={"sale_id": int})
        with bus.deferred() as scope, pytest.raises(PayloadError, match="sale_id"):
            bus.defer("sale.closed", sale_id="seven")
        assert scope.reports == ()

    @pytest.mark.parametrize(("name", "error"), [("", ValueError), (3, TypeError)])
    def test_bad_name(self, bus: EventBus, name: Any, error: type[Exception]) -> None:
        """A bad name raises at defer as it would at emit."""
        with bus.deferred(), pytest.raises(error):
            bus.defer(name)

    def test_data_with_a_plain_name(self, bus: EventBus) -> None:
        """A positional data argument with a plain name is a TypeError."""
        with bus.deferred(), pytest.raises(TypeError, match="keyword arguments"):
            bus.defer("a", {"n": 1})  # type: ignore[call-overload]

    def test_bad_source(self, bus: EventBus) -> None:
        """A source that is not a str raises at defer."""
        with bus.deferred(), pytest.raises(TypeError, match="source"):
            bus.defer("a", source=3)  # type: ignore[call-overload]

    async def test_closed_bus(self, bus: EventBus) -> None:
        """A closed bus refuses defer at once."""
        await bus.aclose()
        with bus.deferred(), pytest.raises(BusClosedError):
            bus.defer("a")

    def test_refusal_shows_one_frame(self, bus: EventBus) -> None:
        """A refused defer's traceback shows one eventbus frame, as emit's does."""
        bus.declare("a", payload={"n": int})
        with bus.deferred(), pytest.raises(PayloadError) as caught:
            bus.defer("a", n="hunter2")
        frames = traceback.extract_tb(caught.value.__traceback__)
        assert sum(1 for frame in frames if frame.filename.startswith(PACKAGE)) == 1


# ---------------------------------------------------------------- nesting


class TestNesting:
    async def test_inner_joins_outer(self, bus: EventBus, scoped: Scoped) -> None:
        """An inner scope's emissions run only when the outer one exits, in defer order."""
        seen = recording(bus, "a", "b", "c")
        at_inner_exit: list[int] = []

        def body() -> None:
            bus.defer("a")
            with bus.deferred() as inner:
                bus.defer("b")
            at_inner_exit.append(len(seen))
            assert inner.reports == ()
            bus.defer("c")

        scope = await scoped(bus, body)

        assert at_inner_exit == [0]
        assert [name for name, _ in seen] == ["a", "b", "c"]
        assert len(scope.reports) == 3

    async def test_inner_failure_discards_only_inner(self, bus: EventBus, scoped: Scoped) -> None:
        """Like a savepoint: an inner scope that raises drops its own emissions only."""
        seen = recording(bus, "a", "b", "c")

        def body() -> None:
            bus.defer("a")

            def savepoint() -> None:
                with bus.deferred():
                    bus.defer("b")
                    raise Boom

            with pytest.raises(Boom):
                savepoint()
            bus.defer("c")

        with structlog.testing.capture_logs() as logs:
            await scoped(bus, body)

        assert [name for name, _ in seen] == ["a", "c"]
        assert [entry["names"] for entry in discards(logs)] == [["b"]]

    async def test_outer_failure_discards_joined(self, bus: EventBus, scoped: Scoped) -> None:
        """What an inner scope handed to the outer one is dropped when the outer raises."""
        seen = recording(bus, "a", "b")

        def body() -> None:
            bus.defer("a")
            with bus.deferred():
                bus.defer("b")
            raise Boom

        with structlog.testing.capture_logs() as logs, pytest.raises(Boom):
            await scoped(bus, body)

        assert seen == []
        assert [entry["names"] for entry in discards(logs)] == [["a", "b"]]

    async def test_scopes_of_two_buses_are_apart(self) -> None:
        """A scope of another bus inside a scope does not join it."""
        first, second = EventBus("first"), EventBus("second")
        seen_first = recording(first, "a")
        seen_second = recording(second, "b")

        async with first.deferred():
            first.defer("a")
            async with second.deferred():
                second.defer("b")
            assert seen_second == [("b", {})]
            assert seen_first == []
        assert seen_first == [("a", {})]

    async def test_defer_in_a_held_handler_needs_its_own_scope(self, bus: EventBus) -> None:
        """A handler of a held emission runs after its scope closed: defer there is refused."""

        def handler(event: Event) -> None:
            bus.defer("b")

        bus.on("a", handler)
        async with bus.deferred() as scope:
            bus.defer("a")
        assert isinstance(scope.reports[0].errors[0].error, RuntimeError)


# ---------------------------------------------------------------- context


class TestContext:
    async def test_follows_awaits(self, bus: EventBus) -> None:
        """defer in a coroutine awaited inside the block holds in the block's scope."""
        seen = recording(bus, "a")

        async def close_till() -> None:
            await asyncio.sleep(0)
            bus.defer("a")

        async with bus.deferred() as scope:
            await close_till()
            assert seen == []
        assert len(scope.reports) == 1

    async def test_follows_tasks(self, bus: EventBus) -> None:
        """A task started inside the block holds in the block's scope."""
        seen = recording(bus, "a")

        async def close_till() -> None:
            bus.defer("a", n=1)

        async with bus.deferred():
            await asyncio.create_task(close_till())
            assert seen == []
        assert seen == [("a", {"n": 1})]

    async def test_follows_worker_threads(self, bus: EventBus, scoped: Scoped) -> None:
        """Threads run in a copy of the block's context defer into its scope."""
        seen = recording(bus, "a")

        def body() -> None:
            context = contextvars.copy_context()
            threads = [
                threading.Thread(target=context.copy().run, args=(bus.defer, "a"), kwargs={"n": n})
                for n in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(HANG_GUARD)

        await scoped(bus, body)
        assert sorted(payload["n"] for _, payload in seen) == list(range(8))

    async def test_task_outliving_its_scope(self, bus: EventBus) -> None:
        """A task that defers after its scope exited gets a RuntimeError."""
        release = asyncio.Event()

        async def late() -> None:
            await release.wait()
            bus.defer("a")

        async with bus.deferred():
            task = asyncio.create_task(late())
        release.set()
        with pytest.raises(RuntimeError, match="needs an open"):
            await asyncio.wait_for(task, HANG_GUARD)

    def test_entered_twice(self, bus: EventBus) -> None:
        """A scope object is entered once; a second entry is a RuntimeError."""
        scope = bus.deferred()
        with scope:
            pass
        with pytest.raises(RuntimeError, match="already entered"), scope:
            pass

    def test_entered_while_open(self, bus: EventBus) -> None:
        """Entering a scope that is open is a RuntimeError too."""
        scope = bus.deferred()
        with scope, pytest.raises(RuntimeError, match="already entered"), scope:
            pass

    async def test_exited_in_another_task(self, bus: EventBus) -> None:
        """A scope exited by another task than the one that entered it raises and discards."""
        seen = recording(bus, "a")
        scope = bus.deferred()
        await scope.__aenter__()
        bus.defer("a")

        async def exit_elsewhere() -> None:
            await scope.__aexit__(None, None, None)

        with structlog.testing.capture_logs() as logs, pytest.raises(RuntimeError, match="task"):
            await asyncio.create_task(exit_elsewhere())
        assert seen == []
        assert [entry["names"] for entry in discards(logs)] == [["a"]]

    def test_repr(self, bus: EventBus) -> None:
        scope = bus.deferred()
        assert repr(scope) == "<DeferredScope of 'test' new held=0>"
        with scope:
            bus.defer("a")
            assert repr(scope) == "<DeferredScope of 'test' open held=1>"


# ---------------------------------------------------------------- at exit


class TestExit:
    async def test_sync_scope_in_loop_refuses_async_handlers_first(self, bus: EventBus) -> None:
        """with, in a running loop's thread: a held emission with an async handler
        raises RuntimeError at exit, before any held emission runs."""
        seen = recording(bus, "a")

        async def handler(event: Event) -> None:
            pass

        bus.on("b", handler)

        def block() -> None:
            with bus.deferred():
                bus.defer("a")
                bus.defer("b")

        with (
            structlog.testing.capture_logs() as logs,
            pytest.raises(RuntimeError, match="async with"),
        ):
            block()

        assert seen == []
        assert [entry["names"] for entry in discards(logs)] == [["a", "b"]]

    async def test_sync_scope_in_loop_runs_sync_handlers(self, bus: EventBus) -> None:
        """with, in a running loop's thread, runs held emissions with sync handlers only."""
        seen = recording(bus, "a")
        with bus.deferred():
            bus.defer("a")
        assert seen == [("a", {})]

    async def test_bus_closed_before_async_exit(self, bus: EventBus) -> None:
        """A bus closed while the block ran refuses the held emissions at exit:
        BusClosedError, and the rest are discarded."""
        seen = recording(bus, "a", "b")

        async def block() -> None:
            async with bus.deferred():
                bus.defer("a")
                bus.defer("b")
                await bus.aclose()

        with structlog.testing.capture_logs() as logs, pytest.raises(BusClosedError):
            await block()
        assert seen == []
        assert [entry["names"] for entry in discards(logs)] == [["b"]]

    async def test_bus_closed_before_sync_exit(self, bus: EventBus) -> None:
        """The same for a with scope (in a worker thread)."""
        seen = recording(bus, "a", "b")
        loop = asyncio.get_running_loop()

        def block() -> None:
            with bus.deferred():
                bus.defer("a")
                bus.defer("b")
                asyncio.run_coroutine_threadsafe(bus.aclose(), loop).result(HANG_GUARD)

        with structlog.testing.capture_logs() as logs, pytest.raises(BusClosedError):
            await asyncio.wait_for(asyncio.to_thread(block), HANG_GUARD)
        assert seen == []
        assert [entry["names"] for entry in discards(logs)] == [["b"]]

    async def test_cancelled_during_exit(self, bus: EventBus) -> None:
        """A task cancelled while its scope runs the held emissions stops there: the
        rest are discarded and logged, CancelledError propagates."""
        started = asyncio.Event()
        seen = recording(bus, "b")

        async def slow(event: Event) -> None:
            started.set()
            await asyncio.Event().wait()

        bus.on("a", slow)

        async def block() -> None:
            async with bus.deferred():
                bus.defer("a")
                bus.defer("b")

        task = asyncio.create_task(block())
        with structlog.testing.capture_logs() as logs:
            await asyncio.wait_for(started.wait(), HANG_GUARD)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        assert seen == []
        assert [entry["names"] for entry in discards(logs)] == [["b"]]

    async def test_emit_unchanged_without_a_scope(self, bus: EventBus) -> None:
        """Outside any scope, emit runs at once as always."""
        seen = recording(bus, "a")
        await bus.emit("a")
        assert seen == [("a", {})]


# ---------------------------------------------------------------- topics


class TestTopics:
    @pytest.mark.parametrize("form", ["instance", "fields"])
    async def test_held_topic_reaches_handlers_with_its_data(
        self, bus: EventBus, scoped: Scoped, form: str
    ) -> None:
        """A topic deferred with an instance or with its fields is emitted with
        ``event.data`` an instance of its data type."""
        seen: list[object] = []
        bus.on(TILL_CLOSED, lambda event: seen.append(event.data))

        def body() -> None:
            if form == "instance":
                bus.defer(TILL_CLOSED, TillClosed(3))
            else:
                bus.defer(TILL_CLOSED, till_id=3)

        await scoped(bus, body)

        assert seen == [TillClosed(3)]

    def test_bad_fields_refused_at_defer(self, bus: EventBus) -> None:
        """A topic's fields are checked when deferred, not when the scope exits."""
        with bus.deferred() as scope, pytest.raises(PayloadError, match="till_id"):
            bus.defer(TILL_CLOSED, till_id="three")
        assert scope.reports == ()

    async def test_discard_log_names_the_topic(self, bus: EventBus, scoped: Scoped) -> None:
        """A discarded topic emission is logged under its event name."""

        def body() -> None:
            bus.defer(TILL_CLOSED, TillClosed(1))
            raise Boom

        with structlog.testing.capture_logs() as logs, pytest.raises(Boom):
            await scoped(bus, body)

        assert [entry["names"] for entry in discards(logs)] == [["till.closed"]]

    def test_plain_name_declared_with_a_data_type_is_checked_at_defer(self, bus: EventBus) -> None:
        """A plain name declared with a data type has its fields checked when
        deferred; nothing held so far is lost to it."""
        bus.declare("till.closed", payload=TillClosed)
        seen = recording(bus, "a")
        with bus.deferred() as scope:
            bus.defer("a")
            with pytest.raises(PayloadError, match="till_id"):
                bus.defer("till.closed", till_id="three")
        assert [name for name, _ in seen] == ["a"]
        assert len(scope.reports) == 1

    async def test_sync_scope_in_a_loop_runs_held_topics(self, bus: EventBus) -> None:
        """A sync scope exiting in a running loop's thread runs held topic
        emissions whose handlers are all sync."""
        seen: list[object] = []
        bus.on(TILL_CLOSED, lambda event: seen.append(event.data))
        with bus.deferred():
            bus.defer(TILL_CLOSED, till_id=4)
        assert seen == [TillClosed(4)]

    async def test_sync_scope_in_a_loop_refuses_a_held_topic_with_an_async_handler(
        self, bus: EventBus
    ) -> None:
        """In a running loop's thread, a held topic emission with an async handler
        is refused at exit before any held emission runs."""
        seen = recording(bus, "a")

        async def handler(event: Event[TillClosed]) -> None:
            pass

        bus.on(TILL_CLOSED, handler)
        scope = bus.deferred()
        scope.__enter__()
        bus.defer("a")
        bus.defer(TILL_CLOSED, till_id=4)
        with pytest.raises(RuntimeError, match="async with"):
            scope.__exit__(None, None, None)
        assert seen == []
