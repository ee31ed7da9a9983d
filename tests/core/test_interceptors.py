"""Interceptors: hooks around each emission and each handler run (``bus.add_interceptor``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator, Mapping
from contextvars import ContextVar

import pytest
from emitters import Emitter

from eventbus import EmitReport, Event, EventBus, HandlerInfo, Interceptor

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class Journal(Interceptor):
    """Writes down what its hooks see, tagged with its name."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.lines: list[str] = []
        self.reports: list[EmitReport] = []
        self.errors: list[Exception | None] = []
        self.headers: list[Mapping[str, str]] = []

    def emission(
        self, bus: EventBus, event: Event, headers: Mapping[str, str]
    ) -> Generator[None, EmitReport, None]:
        self.lines.append(f"{self.tag}begin {event.name}")
        self.headers.append(headers)
        report = yield
        self.reports.append(report)
        self.lines.append(f"{self.tag}end {event.name}")

    def handler(self, event: Event, info: HandlerInfo) -> Generator[None, Exception | None, None]:
        self.lines.append(f"{self.tag}before {info.name.rsplit('.', 1)[-1]}")
        error = yield
        self.errors.append(error)
        self.lines.append(f"{self.tag}after {info.name.rsplit('.', 1)[-1]}")


class RequestContext(Interceptor):
    """Sets ``request_id`` for the handlers of an emission: the event's id."""

    def emission(
        self, bus: EventBus, event: Event, headers: Mapping[str, str]
    ) -> Generator[None, EmitReport, None]:
        token = request_id.set(headers.get("request-id", event.id))
        try:
            yield
        finally:
            request_id.reset(token)

    def outgoing(self, event: Event) -> Mapping[str, str]:
        current = request_id.get()
        return {} if current is None else {"request-id": current}


def first(event: Event) -> None:
    pass


def second(event: Event) -> None:
    pass


def broken(event: Event) -> None:
    raise ValueError("broken")


class TestAroundEmissions:
    async def test_emission_hook_runs_around_the_handlers(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        journal = Journal()
        bus.add_interceptor(journal)
        bus.on("order.placed", first)
        bus.on("order.placed", second)
        report = await emit(bus, "order.placed", total=3)
        assert journal.lines == [
            "begin order.placed",
            "before first",
            "after first",
            "before second",
            "after second",
            "end order.placed",
        ]
        assert journal.reports == [report]

    async def test_emission_hook_runs_when_no_handler_listens(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        journal = Journal()
        bus.add_interceptor(journal)
        await emit(bus, "nobody.listens")
        assert journal.lines == ["begin nobody.listens", "end nobody.listens"]
        assert journal.reports[0].results == ()

    async def test_handler_hook_receives_the_handlers_exception(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        journal = Journal()
        bus.add_interceptor(journal)
        bus.on("order.placed", broken, priority=1)
        bus.on("order.placed", first)
        report = await emit(bus, "order.placed")
        assert report.failed == 1
        failure, success = journal.errors
        assert isinstance(failure, ValueError)
        assert success is None

    async def test_skipped_subscription_is_not_wrapped(self, bus: EventBus, emit: Emitter) -> None:
        journal = Journal()
        bus.add_interceptor(journal)
        bus.on("order.placed", first, predicate=lambda event: False)
        await emit(bus, "order.placed")
        assert journal.lines == ["begin order.placed", "end order.placed"]

    async def test_interceptors_nest_in_the_order_they_were_added(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        lines: list[str] = []
        outer, inner = Journal("outer "), Journal("inner ")
        inner.lines = outer.lines = lines
        bus.add_interceptor(outer)
        bus.add_interceptor(inner)
        bus.on("a", first)
        await emit(bus, "a")
        assert lines == [
            "outer begin a",
            "inner begin a",
            "outer before first",
            "inner before first",
            "inner after first",
            "outer after first",
            "inner end a",
            "outer end a",
        ]

    async def test_nested_emission_runs_inside_the_handler_hook(self, bus: EventBus) -> None:
        journal = Journal()
        bus.add_interceptor(journal)

        async def outer(event: Event) -> None:
            await bus.emit("inner")

        bus.on("outer", outer)
        await bus.emit("outer")
        assert journal.lines == [
            "begin outer",
            "before outer",
            "begin inner",
            "end inner",
            "after outer",
            "end outer",
        ]


class TestMatching:
    async def test_interceptor_sees_only_the_names_it_matches(self, bus: EventBus) -> None:
        class OrdersOnly(Journal):
            def matches(self, name: str) -> bool:
                return name.startswith("order.")

        journal = OrdersOnly()
        bus.add_interceptor(journal)
        bus.emit_sync("order.placed")
        bus.emit_sync("member.joined")
        assert journal.lines == ["begin order.placed", "end order.placed"]

    async def test_matches_is_asked_once_per_route(self, bus: EventBus) -> None:
        asked: list[str] = []

        class Asked(Interceptor):
            def matches(self, name: str) -> bool:
                asked.append(name)
                return True

        bus.add_interceptor(Asked())
        for _ in range(3):
            bus.emit_sync("a")
        assert asked == ["a"]

    def test_bus_without_interceptor_routes_through_the_plain_loops(self, bus: EventBus) -> None:
        bus.on("a", first)
        bus.emit_sync("a")
        assert bus._router.routes["a"].intercept is None

    def test_interceptor_with_no_hook_overridden_changes_nothing(self, bus: EventBus) -> None:
        bus.add_interceptor(Interceptor())
        bus.on("a", broken)
        assert bus.emit_sync("a").failed == 1
        assert bus._router.routes["a"].intercept is None
        assert bus.outgoing_headers(Event("a", {})) == {}


class TestRegistration:
    def test_adding_an_interceptor_twice_runs_it_once(self, bus: EventBus) -> None:
        journal = Journal()
        bus.add_interceptor(journal)
        bus.add_interceptor(journal)
        bus.emit_sync("a")
        assert journal.lines == ["begin a", "end a"]

    def test_removed_interceptor_runs_no_more(self, bus: EventBus) -> None:
        journal = Journal()
        bus.add_interceptor(journal)
        bus.emit_sync("a")
        bus.remove_interceptor(journal)
        bus.emit_sync("a")
        assert journal.lines == ["begin a", "end a"]
        assert bus._router.routes["a"].intercept is None

    def test_removing_an_unknown_interceptor_is_harmless(self, bus: EventBus) -> None:
        bus.remove_interceptor(Journal())

    def test_adding_something_else_is_a_type_error(self, bus: EventBus) -> None:
        with pytest.raises(TypeError, match=r"needs an eventbus\.Interceptor, not object"):
            bus.add_interceptor(object())  # type: ignore[arg-type]

    def test_hook_that_is_no_generator_is_refused_when_added(self, bus: EventBus) -> None:
        class Forgot(Interceptor):
            def handler(  # type: ignore[override]
                self, event: Event, info: HandlerInfo
            ) -> None:
                pass

        with pytest.raises(TypeError, match=r"Forgot.handler must be a generator function"):
            bus.add_interceptor(Forgot())


class TestFailingHooks:
    async def test_handler_hook_exception_counts_as_the_handlers_failure(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        class Refuses(Interceptor):
            def handler(
                self, event: Event, info: HandlerInfo
            ) -> Generator[None, Exception | None, None]:
                raise PermissionError("not now")
                yield

        ran: list[Event] = []
        bus.add_interceptor(Refuses())
        bus.on("a", ran.append)
        report = await emit(bus, "a")
        assert ran == []
        assert isinstance(report.results[0].error, PermissionError)

    async def test_emission_hook_exception_reaches_the_emitter_before_any_handler(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        class Refuses(Interceptor):
            def emission(
                self, bus: EventBus, event: Event, headers: Mapping[str, str]
            ) -> Generator[None, EmitReport, None]:
                raise PermissionError("not now")
                yield

        ran: list[Event] = []
        bus.add_interceptor(Refuses())
        bus.on("a", ran.append)
        with pytest.raises(PermissionError):
            await emit(bus, "a")
        assert ran == []

    def test_failing_begin_finishes_the_hooks_already_begun(self, bus: EventBus) -> None:
        class Refuses(Interceptor):
            def emission(
                self, bus: EventBus, event: Event, headers: Mapping[str, str]
            ) -> Generator[None, EmitReport, None]:
                raise PermissionError("not now")
                yield

        cleaned: list[str] = []

        class Cleans(Interceptor):
            def emission(
                self, bus: EventBus, event: Event, headers: Mapping[str, str]
            ) -> Generator[None, EmitReport, None]:
                try:
                    yield
                finally:
                    cleaned.append(event.name)

        bus.add_interceptor(Cleans())
        bus.add_interceptor(Refuses())
        with pytest.raises(PermissionError):
            bus.emit_sync("a")
        assert cleaned == ["a"]

    def test_hook_that_yields_twice_is_a_runtime_error(self, bus: EventBus) -> None:
        class Twice(Interceptor):
            def emission(
                self, bus: EventBus, event: Event, headers: Mapping[str, str]
            ) -> Generator[None, EmitReport, None]:
                yield
                yield

        bus.add_interceptor(Twice())
        with pytest.raises(RuntimeError, match="yielded twice"):
            bus.emit_sync("a")

    async def test_cancellation_is_thrown_into_the_hooks(self, bus: EventBus) -> None:
        seen: list[str] = []

        class Sees(Interceptor):
            def emission(
                self, bus: EventBus, event: Event, headers: Mapping[str, str]
            ) -> Generator[None, EmitReport, None]:
                try:
                    yield
                except asyncio.CancelledError:
                    seen.append("emission cancelled")
                    raise

            def handler(
                self, event: Event, info: HandlerInfo
            ) -> Generator[None, Exception | None, None]:
                try:
                    yield
                except asyncio.CancelledError:
                    seen.append("handler cancelled")
                    raise

        started = asyncio.Event()

        async def waits(event: Event) -> None:
            started.set()
            await asyncio.Event().wait()

        bus.add_interceptor(Sees())
        bus.on("a", waits)
        task = bus.publish("a")
        await asyncio.wait_for(started.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["handler cancelled", "emission cancelled"]


class TestCarryingContext:
    async def test_context_set_by_the_emission_hook_reaches_the_handlers(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        seen: list[str | None] = []
        bus.add_interceptor(RequestContext())
        bus.on("a", lambda event: seen.append(request_id.get()))
        report = await emit(bus, "a")
        assert seen == [report.event.id]
        assert request_id.get() is None  # reset once the emission is over

    async def test_async_handler_sees_the_context(self, bus: EventBus, emit: Emitter) -> None:
        seen: list[str | None] = []

        async def handler(event: Event) -> None:
            await asyncio.sleep(0)
            seen.append(request_id.get())

        bus.add_interceptor(RequestContext())
        bus.on("a", handler)
        report = await emit(bus, "a")
        assert seen == [report.event.id]

    def test_threads_each_see_their_own_context(self, bus: EventBus) -> None:
        seen: dict[str, str | None] = {}
        lock = threading.Lock()
        barrier = threading.Barrier(4, timeout=60)

        def handler(event: Event) -> None:
            with lock:
                seen[event.id] = request_id.get()

        bus.add_interceptor(RequestContext())
        bus.on("a", handler)

        def emitter() -> None:
            barrier.wait()
            for _ in range(50):
                bus.emit_sync("a")

        threads = [threading.Thread(target=emitter) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(seen) == 200
        assert all(event_id == seen_id for event_id, seen_id in seen.items())

    async def test_outgoing_headers_travel_to_the_receiving_bus(self, bus: EventBus) -> None:
        here, there = bus, EventBus("there")
        seen: list[str | None] = []
        for each in (here, there):
            each.add_interceptor(RequestContext())
        sent: list[tuple[Event, dict[str, str]]] = []
        here.on("a", lambda event: sent.append((event, here.outgoing_headers(event))))
        there.on("a", lambda event: seen.append(request_id.get()))
        origin = (await here.emit("a")).event
        event, headers = sent[0]
        assert headers == {"request-id": origin.id}
        await there.emit_received(event, headers=headers)
        assert seen == [origin.id]

    def test_outgoing_headers_are_empty_without_interceptors(self, bus: EventBus) -> None:
        assert bus.outgoing_headers(Event("a", {})) == {}

    def test_outgoing_headers_of_something_else_is_a_type_error(self, bus: EventBus) -> None:
        with pytest.raises(TypeError, match="needs an Event"):
            bus.outgoing_headers("a")  # type: ignore[arg-type]

    async def test_received_headers_reach_the_emission_hook(self, bus: EventBus) -> None:
        journal = Journal()
        bus.add_interceptor(journal)
        await bus.emit_received(Event("a", {}), headers={"traceparent": "x"})
        assert journal.headers == [{"traceparent": "x"}]

    @pytest.mark.parametrize(
        ("headers", "error"),
        [
            pytest.param(["traceparent"], TypeError, id="not-a-mapping"),
            pytest.param({"traceparent": 1}, TypeError, id="not-a-str-value"),
            pytest.param({b"traceparent": "x"}, TypeError, id="not-a-str-key"),
            pytest.param({"Trace Parent": "x"}, ValueError, id="bad-name"),
            pytest.param({"": "x"}, ValueError, id="empty-name"),
            pytest.param({"k" * 65: "x"}, ValueError, id="long-name"),
            pytest.param({"traceparent": "x" * 1025}, ValueError, id="long-value"),
            pytest.param({"traceparent": "a\nb"}, ValueError, id="control-character"),
            pytest.param({"traceparent": "é"}, ValueError, id="not-ascii"),
            pytest.param({f"h{i}": "x" for i in range(17)}, ValueError, id="too-many"),
        ],
    )
    async def test_bad_received_headers_are_refused(
        self, bus: EventBus, headers: object, error: type[Exception]
    ) -> None:
        ran: list[Event] = []
        bus.on("a", ran.append)
        with pytest.raises(error):
            await bus.emit_received(Event("a", {}), headers=headers)  # type: ignore[arg-type]
        assert ran == []
