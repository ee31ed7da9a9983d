"""Races with real threads and real tasks, each run many times: every call is
counted, and nothing given to the bus may be lost, duplicated or half-run.

The fast variants run a few rounds; the ``heavy`` ones (``pytest -m heavy``)
run the same rounds many more times.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from thread_helpers import run_threads

from eventbus import BusClosedError, EmitReport, Event, EventBus, HandlerInfo

JOIN_TIMEOUT = 60.0


pytestmark = pytest.mark.usefixtures("fast_thread_switching")


def repeat(one_round: Callable[[], None], rounds: int) -> None:
    for _ in range(rounds):
        one_round()


def in_dispatch_order(infos: list[HandlerInfo]) -> bool:
    return infos == sorted(infos, key=lambda info: (-info.priority, info.order))


# ---------------------------------------------------------------- emitting while others subscribe


def emitters_against_churning_subscribers() -> None:
    emitters, churners, emissions, churns = 8, 2, 50, 120
    bus = EventBus("race")
    tokens = itertools.count()  # next() is atomic under the GIL
    calls: list[tuple[str, int]] = []

    def make(label: str) -> Callable[[Event], Any]:
        def handler(event: Event) -> tuple[str, int]:
            call = (label, next(tokens))
            calls.append(call)
            return call

        return handler

    bus.on("x.y", make("stable exact"))
    bus.on("x.*", make("stable pattern"), priority=1)
    transients = [make(f"transient {i}") for i in range(churners)]
    reports: list[EmitReport] = []

    def work(index: int) -> None:
        if index < emitters:
            reports.extend([bus.emit_sync("x.y", n=n) for n in range(emissions)])
            return
        transient, owner = transients[index - emitters], f"churner {index}"
        for i in range(churns):
            key = ("x.y", "x.*", "*")[i % 3]
            unrelated = f"unrelated.{index}.{i % 5}"  # keys come and go in the tables
            bus.on(key, transient, priority=i % 5 - 2, owner=owner)
            bus.on(unrelated, transient, owner=owner)
            if i % 2:
                assert bus.off(key, transient) is True
                assert bus.off(unrelated, transient) is True
            else:
                assert bus.clear(owner=owner) == 2

    assert run_threads(emitters + churners, work, JOIN_TIMEOUT) == []

    assert len(reports) == emitters * emissions
    for report in reports:
        assert report.ok, report.errors
        labels = [value[0] for value in report.values]
        assert labels.count("stable exact") == labels.count("stable pattern") == 1
        assert len(labels) == len(set(labels)), "a handler ran twice in one emission"
        assert in_dispatch_order([result.handler for result in report.results])
    reported = [value for report in reports for value in report.values]
    assert sorted(reported) == sorted(calls), "a call was lost or reported twice"
    assert bus.listener_count() == 2
    assert bus.topics() == ("x.*", "x.y")


class TestEmitWhileChurn:
    def test_few_rounds(self) -> None:
        """8 threads emitting while 2 threads subscribe and unsubscribe lose nothing."""
        repeat(emitters_against_churning_subscribers, 8)

    @pytest.mark.heavy
    def test_many_rounds(self) -> None:
        """8 threads emitting while 2 threads subscribe and unsubscribe, many times."""
        repeat(emitters_against_churning_subscribers, 150)


# ---------------------------------------------------------------- once, raced for by threads, tasks


def once_claimed_by_threads_and_tasks(handler_is_async: bool) -> None:
    threads, tasks, emissions, handlers = 3, 4, 10, 40
    bus = EventBus("race")
    claims: list[int] = []

    def make_once(token: int) -> Callable[[Event], Any]:
        async def async_once(event: Event) -> int:
            claims.append(token)
            await asyncio.sleep(0)
            return token

        def sync_once(event: Event) -> int:
            claims.append(token)
            return token

        return async_once if handler_is_async else sync_once

    bus.on("x", lambda event: None, priority=1)
    for token in range(handlers):  # many claims to race for in each round
        bus.once("x", make_once(token))
    reports: list[EmitReport] = []
    threads_done = threading.Semaphore(0)

    async def tasks_main() -> None:
        async def emitter(k: int) -> None:
            for _ in range(emissions):
                reports.append(await bus.emit("x", who=f"task {k}"))
                await asyncio.sleep(0)

        await asyncio.gather(*(emitter(k) for k in range(tasks)))
        for _ in range(threads):  # keep this loop running for the threads' async handlers
            assert await asyncio.to_thread(threads_done.acquire, timeout=JOIN_TIMEOUT)

    def work(index: int) -> None:
        if index == threads:
            asyncio.run(tasks_main())
            return
        try:
            reports.extend([bus.emit_sync("x", who=f"thread {index}") for _ in range(emissions)])
        finally:
            threads_done.release()

    assert run_threads(threads + 1, work, JOIN_TIMEOUT) == []

    assert len(reports) == (threads + tasks) * emissions
    assert all(report.ok for report in reports)
    assert Counter(claims) == dict.fromkeys(range(handlers), 1), "a once handler ran twice"
    once_values = [r.value for report in reports for r in report.results if r.handler.once]
    assert sorted(once_values) == list(range(handlers))
    assert bus.listener_count("x") == 1


class TestOnceRaced:
    @pytest.mark.parametrize("handler_is_async", [False, True], ids=["sync", "async"])
    def test_few_rounds(self, handler_is_async: bool) -> None:
        """A once handler raced for by threads and tasks runs exactly once."""
        repeat(functools.partial(once_claimed_by_threads_and_tasks, handler_is_async), 15)

    @pytest.mark.heavy
    @pytest.mark.parametrize("handler_is_async", [False, True], ids=["sync", "async"])
    def test_many_rounds(self, handler_is_async: bool) -> None:
        """Once handler raced for by threads and tasks many times."""
        repeat(functools.partial(once_claimed_by_threads_and_tasks, handler_is_async), 400)


# ---------------------------------------------------------------- collection on another thread


class Tracked:
    """A listener whose calls are counted outside it (it dies during the test)."""

    def __init__(self, uid: int, calls: list[int], cyclic: bool) -> None:
        self.uid = uid
        self.calls = calls
        if cyclic:
            self.me = self  # only the garbage collector frees it

    def handle(self, event: Event) -> int:
        self.calls.append(self.uid)
        return self.uid


def collection_during_emissions() -> None:
    emitters, emissions, objects = 4, 60, 120
    bus = EventBus("race")
    calls: list[int] = []
    tracked = [Tracked(uid, calls, cyclic=uid % 2 == 0) for uid in range(objects)]
    refs = [weakref.ref(obj) for obj in tracked]
    for obj in tracked:
        bus.on("x", obj.handle)
    del obj
    bus.on("x", str, priority=-1)  # a strong handler that must run every time
    paced = threading.Semaphore(0)
    reports: list[EmitReport] = []

    def work(index: int) -> None:
        if index < emitters:
            for _ in range(emissions):
                reports.append(bus.emit_sync("x"))
                paced.release()
            return
        while tracked:  # one object dropped per emission made so far
            assert paced.acquire(timeout=JOIN_TIMEOUT)
            tracked.pop()
            if len(tracked) % 20 == 0:
                gc.collect()

    assert run_threads(emitters + 1, work, JOIN_TIMEOUT) == []
    gc.collect()

    assert all(ref() is None for ref in refs)
    assert len(reports) == emitters * emissions
    for report in reports:
        assert report.ok, report.errors
        uids = [value for value in report.values if isinstance(value, int)]
        assert uids == sorted(set(uids)), "a listener ran twice, or out of order"
        assert report.values[-1] == str(report.event)
    reported = Counter(v for report in reports for v in report.values if isinstance(v, int))
    assert reported == Counter(calls), "a call was lost or reported twice"
    assert bus.listener_count() == 1
    assert len(bus.emit_sync("x").results) == 1


class TestCollectWhileEmitting:
    def test_few_rounds(self) -> None:
        """Objects collected on another thread while threads emit are never half-called."""
        repeat(collection_during_emissions, 3)

    @pytest.mark.heavy
    def test_many_rounds(self) -> None:
        """Objects collected on another thread while threads emit, many times."""
        repeat(collection_during_emissions, 40)


# ---------------------------------------------------------------- publish, drain and aclose


async def publish_while_draining_and_closing() -> None:
    publishers, threshold = 12, 150
    bus = EventBus("race")
    started: set[str] = set()
    finished: set[str] = set()
    children: list[str] = []

    async def work(event: Event) -> str:
        started.add(event.id)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        finished.add(event.id)
        bus.publish("child", parent=event.id)  # a chain in progress may go on
        return event.id

    bus.on("work", work)
    bus.on("child", lambda event: children.append(event["parent"]))
    accepted: list[asyncio.Task[EmitReport]] = []
    refused: list[bool] = []  # for each refusal: had aclose been called?
    accepted_late: list[bool] = []  # for each acceptance: had aclose been called?
    phase = {"closing": False, "closed": False}
    at_close: dict[str, Any] = {}

    async def publisher() -> None:
        while True:
            closing = phase["closing"]
            try:
                task = bus.publish("work")
            except BusClosedError:
                refused.append(closing)
                if phase["closed"]:
                    return
            else:
                accepted.append(task)
                accepted_late.append(closing)
            await asyncio.sleep(0)

    async def drainer() -> None:
        while not phase["closed"]:
            await bus.drain()
            await asyncio.sleep(0)

    async def closer() -> None:
        while len(accepted) < threshold:
            await asyncio.sleep(0)
        phase["closing"] = True
        await bus.aclose()
        phase["closed"] = True
        at_close.update(
            started=set(started),
            finished=set(finished),
            children=len(children),
            all_done=all(task.done() for task in accepted),
        )

    await asyncio.wait_for(
        asyncio.gather(*(publisher() for _ in range(publishers)), drainer(), drainer(), closer()),
        JOIN_TIMEOUT,
    )

    assert at_close["all_done"], "aclose returned before an accepted emission was done"
    assert not any(accepted_late), "a publish was accepted after aclose was called"
    assert refused, "no publish was refused"
    assert all(refused), "a publish was refused before aclose was called"
    ids = {task.result().event.id for task in accepted}
    assert len(ids) == len(accepted) >= threshold
    assert at_close["started"] == at_close["finished"] == ids, "an emission was lost or half-run"
    assert at_close["children"] == len(accepted)
    assert sorted(children) == sorted(ids)
    assert all(task.result().values == (task.result().event.id,) for task in accepted)


async def threads_emitting_while_closing() -> None:
    workers = 4
    bus = EventBus("race")
    starts: list[str] = []
    ends: list[str] = []
    warmed_up = threading.Event()

    def handler(event: Event) -> str:
        starts.append(event.id)
        sum(range(3000))  # work between start and end, long enough for threads to switch
        ends.append(event.id)
        if len(ends) >= 50:
            warmed_up.set()
        return event.id

    bus.on("work", handler)
    outcomes: list[list[str | None]] = [[] for _ in range(workers)]

    def worker(index: int) -> None:
        mine = outcomes[index]
        while mine.count(None) < 3:
            try:
                mine.append(bus.emit_sync("work").event.id)
            except BusClosedError:
                mine.append(None)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        assert await asyncio.to_thread(warmed_up.wait, JOIN_TIMEOUT)
        await asyncio.wait_for(bus.aclose(), JOIN_TIMEOUT)
        started_at_close, ended_at_close = set(starts), set(ends)
    finally:
        for thread in threads:
            await asyncio.to_thread(thread.join, JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)

    assert started_at_close == ended_at_close, "aclose returned while an emission ran"
    assert set(starts) == started_at_close, "an emission started after aclose returned"
    accepted = [i for mine in outcomes for i in mine if i is not None]
    assert sorted(accepted) == sorted(starts) == sorted(ends)
    for mine in outcomes:
        first_refusal = mine.index(None)
        assert all(i is None for i in mine[first_refusal:]), "accepted after a refusal"


class TestWhileClosing:
    async def test_publish_while_closing(self) -> None:
        """Publish from many tasks while drain and aclose run delivers or refuses each."""
        for _ in range(4):
            await publish_while_draining_and_closing()

    @pytest.mark.heavy
    async def test_publish_while_closing_many(self) -> None:
        """Publish from many tasks while drain and aclose run, many times."""
        for _ in range(100):
            await publish_while_draining_and_closing()

    async def test_threads_while_closing(self) -> None:
        """Threads emitting while aclose runs finish or are refused, never half-run."""
        for _ in range(3):
            await threads_emitting_while_closing()

    @pytest.mark.heavy
    async def test_threads_while_closing_many(self) -> None:
        """Threads emitting while aclose runs many times."""
        for _ in range(60):
            await threads_emitting_while_closing()


# ---------------------------------------------------------------- several loops, one bus


def publish_and_drain_on_loops_in_several_threads() -> None:
    loops, batches, batch = 3, 30, 20
    bus = EventBus("race")
    delivered: list[int] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        delivered.append(event["who"])

    bus.on("x", handler)

    def work(index: int) -> None:
        async def main() -> None:
            for _ in range(batches):
                tasks = [bus.publish("x", who=index) for _ in range(batch)]
                await bus.drain()
                assert all(task.done() for task in tasks)

        asyncio.run(main())

    assert run_threads(loops, work, JOIN_TIMEOUT) == []
    assert Counter(delivered) == dict.fromkeys(range(loops), batches * batch)


class TestLoopsInThreads:
    def test_few_rounds(self) -> None:
        """publish and drain from loops in several threads deliver everything.

        ``drain`` in one thread must not trip over tasks another thread's loop
        publishes or finishes meanwhile."""
        repeat(publish_and_drain_on_loops_in_several_threads, 5)

    @pytest.mark.heavy
    def test_many_rounds(self) -> None:
        """publish and drain from loops in several threads, many times."""
        repeat(publish_and_drain_on_loops_in_several_threads, 100)


# ---------------------------------------------------------------- emit_sync while the loop stops


def emit_sync_while_the_bus_loop_stops() -> None:
    emissions = 30
    bus = EventBus("race")
    ran: list[str] = []

    async def handler(event: Event) -> str:
        ran.append(event.id)
        return "ran"

    bus.on("x", handler)
    loop_known = threading.Event()
    reports: list[EmitReport] = []

    async def short_lived_loop() -> None:
        await bus.emit("x")  # the bus now knows this loop, which soon stops
        loop_known.set()
        for _ in range(3):
            await asyncio.sleep(0)

    def emitter() -> None:
        assert loop_known.wait(JOIN_TIMEOUT)
        reports.extend([bus.emit_sync("x") for _ in range(emissions)])

    loop_thread = threading.Thread(target=asyncio.run, args=(short_lived_loop(),), daemon=True)
    emitting = threading.Thread(target=emitter, daemon=True)
    loop_thread.start()
    emitting.start()
    loop_thread.join(JOIN_TIMEOUT)
    emitting.join(JOIN_TIMEOUT)
    assert not emitting.is_alive(), "emit_sync hung on a loop that had stopped"
    assert len(reports) == emissions
    for report in reports:
        assert report.values == ("ran",), report.errors
    assert sorted(ran[1:]) == sorted(report.event.id for report in reports)


class TestLoopStops:
    def test_few_rounds(self) -> None:
        """emit_sync from a thread while the bus loop stops runs each async handler once.

        API.md: async handlers run on a loop the bus emitted on *that is still
        running*, else on a private loop: a loop that stops meanwhile must neither
        hang the emitting thread nor swallow the handler."""
        repeat(emit_sync_while_the_bus_loop_stops, 100)
        gc.collect()  # a coroutine left never awaited would warn here, in this test

    @pytest.mark.heavy
    def test_many_rounds(self) -> None:
        """emit_sync from a thread while the bus loop stops, many times."""
        repeat(emit_sync_while_the_bus_loop_stops, 2000)
        gc.collect()
