"""Typed events: Topic[T], its data types, Event.data, and topics wherever a name is.

The module uses ``from __future__ import annotations`` on purpose: every data
type below has string annotations, which the checks must resolve.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import pickle
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import pydantic
import pytest

from eventbus import (
    Event,
    EventBus,
    EventSpec,
    PayloadError,
    Topic,
    UnknownEventError,
)
from eventbus.testing import recording
from tests.emitters import HANG_GUARD, Emitter


@dataclass(frozen=True)
class SaleClosed:
    sale_id: str
    total_cents: int
    note: str | None = None
    lines: list[str] = field(default_factory=list)  # not a plain class: not checked


@dataclass(frozen=True)
class RefundedSale(SaleClosed):
    refunded: bool = True


@dataclass(frozen=True)
class MemberCreated:
    member_id: int


@dataclass(frozen=True)
class Positive:
    amount: int

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError("amount must be positive")


@dataclass(frozen=True, slots=True)
class SlottedSale:
    sale_id: str


@dataclass
class CachingSale:
    sale_id: str

    @functools.cached_property
    def label(self) -> str:
        return f"sale {self.sale_id}"


class SaleModel(pydantic.BaseModel):
    sale_id: str
    total_cents: int


class SaleDict(TypedDict):
    sale_id: str
    total_cents: int
    note: NotRequired[str]


SALE_CLOSED = Topic("sale.closed", SaleClosed, description="A till sale was closed")
SALE_MODEL = Topic("sale.modelled", SaleModel)
SALE_DICT = Topic("sale.dicted", SaleDict)
SALE_MAPPING = Topic("sale.mapped", {"sale_id": str, "total_cents": int})


def collect(bus: EventBus, topic: Any) -> list[Event[Any]]:
    """Subscribe a handler to ``topic`` that keeps every event it receives."""
    received: list[Event[Any]] = []
    bus.on(topic, received.append)
    return received


class TestTopic:
    def test_has_its_name_data_type_and_options(self) -> None:
        """A topic keeps its name, data type, description and re-entrancy."""
        topic = Topic("sale.closed", SaleClosed, description="closed", reentrant=True)
        assert (topic.name, topic.data_type) == ("sale.closed", SaleClosed)
        assert (topic.description, topic.reentrant) == ("closed", True)

    def test_is_immutable(self) -> None:
        """Setting or deleting an attribute is an AttributeError."""
        with pytest.raises(AttributeError, match="immutable"):
            SALE_CLOSED.name = "other"  # type: ignore[misc]
        with pytest.raises(AttributeError, match="immutable"):
            del SALE_CLOSED.description  # type: ignore[misc]

    def test_is_hashable_by_name_and_data_type(self) -> None:
        """Two topics of one name and data type are equal; another type is another topic."""
        same = Topic("sale.closed", SaleClosed, description="another description")
        assert same == SALE_CLOSED
        assert hash(same) == hash(SALE_CLOSED)
        assert Topic("sale.closed", MemberCreated) != SALE_CLOSED
        assert Topic("sale.other", SaleClosed) != SALE_CLOSED

    def test_mapping_data_type_is_frozen(self) -> None:
        """A mapping data type is copied read-only: changing the original changes nothing."""
        fields: dict[str, type] = {"sale_id": str}
        topic = Topic("sale.mapped", fields)
        fields["total_cents"] = int
        assert dict(topic.data_type) == {"sale_id": str}
        with pytest.raises(TypeError):
            topic.data_type["x"] = int
        assert topic == Topic("sale.mapped", {"sale_id": str})
        assert hash(topic) == hash(Topic("sale.mapped", {"sale_id": str}))

    def test_repr_shows_name_and_type(self) -> None:
        assert repr(SALE_CLOSED) == "Topic('sale.closed', SaleClosed)"

    def test_pickles(self) -> None:
        """A pickled topic is equal to its original."""
        assert pickle.loads(pickle.dumps(SALE_CLOSED)) == SALE_CLOSED

    @pytest.mark.parametrize(
        ("name", "error"), [("sale.*", ValueError), ("", ValueError), (42, TypeError)]
    )
    def test_bad_name_is_refused(self, name: Any, error: type[Exception]) -> None:
        with pytest.raises(error):
            Topic(name, SaleClosed)

    @pytest.mark.parametrize("data_type", [int, object, list[int], "SaleClosed", None])
    def test_unsupported_data_type_is_a_type_error(self, data_type: Any) -> None:
        """Anything but a dataclass, TypedDict, pydantic model or mapping is refused, saying so."""
        with pytest.raises(TypeError, match="dataclass, a TypedDict, a pydantic BaseModel"):
            Topic("sale.closed", data_type)

    def test_mapping_of_non_types_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="usable with isinstance"):
            Topic("sale.closed", {"sale_id": "str"})

    def test_bad_options_are_type_errors(self) -> None:
        with pytest.raises(TypeError, match="description"):
            Topic("sale.closed", SaleClosed, description=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="reentrant"):
            Topic("sale.closed", SaleClosed, reentrant="yes")  # type: ignore[arg-type]


class TestEmittingAnInstance:
    async def test_handler_receives_the_instance_as_data(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        """The emitted instance is event.data, as it is; the payload maps its fields."""
        received = collect(bus, SALE_CLOSED)
        sale = SaleClosed("S-1", 100_00)
        report = await emit(bus, SALE_CLOSED, sale)
        assert received[0].data is sale
        assert report.event.name == "sale.closed"
        assert dict(received[0].payload) == {
            "sale_id": "S-1",
            "total_cents": 100_00,
            "note": None,
            "lines": [],
        }
        assert received[0]["sale_id"] == "S-1"

    async def test_subclass_instance_is_taken_as_it_is(self, bus: EventBus, emit: Emitter) -> None:
        received = collect(bus, SALE_CLOSED)
        sale = RefundedSale("S-1", 5)
        await emit(bus, SALE_CLOSED, sale)
        assert received[0].data is sale

    async def test_instance_is_not_checked_field_by_field(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        """An instance is taken as it is (its constructor already ran)."""
        received = collect(bus, SALE_CLOSED)
        await emit(bus, SALE_CLOSED, SaleClosed("S-1", "not an int"))  # type: ignore[arg-type]
        assert received[0].data.total_cents == "not an int"

    async def test_instance_of_another_type_is_a_type_error(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        received = collect(bus, SALE_CLOSED)
        with pytest.raises(
            TypeError, match="expected an instance of SaleClosed, not MemberCreated"
        ):
            await emit(bus, SALE_CLOSED, MemberCreated(1))
        assert received == []

    async def test_instance_and_keywords_is_a_type_error(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        received = collect(bus, SALE_CLOSED)
        with pytest.raises(TypeError, match="not both"):
            await emit(bus, SALE_CLOSED, SaleClosed("S-1", 1), note="x")
        assert received == []

    async def test_data_with_a_plain_name_is_a_type_error(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        """Only a topic takes positional data: a plain name's payload is keywords."""
        received = collect(bus, "sale.closed")
        with pytest.raises(TypeError, match="only a Topic takes one"):
            await emit(bus, "sale.closed", {"sale_id": "S-1"})
        assert received == []

    @pytest.mark.parametrize(
        "data", [SlottedSale("S-1"), CachingSale("S-1")], ids=["slots", "cached-property"]
    )
    def test_payload_holds_the_fields_only(self, bus: EventBus, data: Any) -> None:
        """Slotted dataclasses and instances with other attributes give their fields."""
        if isinstance(data, CachingSale):
            assert data.label == "sale S-1"  # cached in the instance's __dict__
        report = bus.emit_sync(Topic("sale.closed", type(data)), data)
        assert dict(report.event.payload) == {"sale_id": "S-1"}
        assert report.event.data is data

    async def test_source_is_kept(self, bus: EventBus, emit: Emitter) -> None:
        report = await emit(bus, SALE_CLOSED, SaleClosed("S-1", 1), source="till")
        assert report.event.source == "till"


class TestEmittingFields:
    async def test_dataclass_is_built_from_keyword_fields(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        received = collect(bus, SALE_CLOSED)
        await emit(bus, SALE_CLOSED, sale_id="S-1", total_cents=5, source="till")
        assert received[0].data == SaleClosed("S-1", 5)
        assert received[0].source == "till"

    async def test_payload_error_names_every_bad_field(self, bus: EventBus, emit: Emitter) -> None:
        """Unknown, missing and mistyped fields are all in one PayloadError, before any handler."""
        received = collect(bus, SALE_CLOSED)
        with pytest.raises(PayloadError) as caught:
            await emit(bus, SALE_CLOSED, sale_id=1, note=2, totl=3)
        message = str(caught.value)
        assert message.startswith("event 'sale.closed' (SaleClosed): ")
        assert "unknown field 'totl'" in message
        assert "field 'total_cents' is missing" in message
        assert "field 'sale_id' expected str, got int" in message
        assert "field 'note' expected str | None, got int" in message
        assert received == []

    async def test_optional_field_accepts_none(self, bus: EventBus, emit: Emitter) -> None:
        received = collect(bus, SALE_CLOSED)
        await emit(bus, SALE_CLOSED, sale_id="S-1", total_cents=1, note=None)
        assert received[0].data.note is None

    async def test_mistyped_field_alone_is_a_payload_error(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        with pytest.raises(PayloadError, match="field 'total_cents' expected int, got str"):
            await emit(bus, SALE_CLOSED, sale_id="S-1", total_cents="100")

    async def test_field_of_a_generic_type_is_not_checked(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        received = collect(bus, SALE_CLOSED)
        await emit(bus, SALE_CLOSED, sale_id="S-1", total_cents=1, lines=("a",))
        assert received[0].data.lines == ("a",)

    async def test_constructor_failure_is_a_payload_error(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        """A dataclass whose __post_init__ refuses the fields: PayloadError saying why."""
        topic = Topic("credit.added", Positive)
        received = collect(bus, topic)
        with pytest.raises(
            PayloadError, match=r"Positive\(\.\.\.\) raised ValueError: amount must be positive"
        ):
            await emit(bus, topic, amount=-1)
        assert received == []

    async def test_payload_error_shows_no_value(self, bus: EventBus, emit: Emitter) -> None:
        """Types only: a payload value may be personal data."""
        with pytest.raises(PayloadError) as caught:
            await emit(bus, SALE_CLOSED, sale_id=123456789, total_cents="secret-value")
        assert "123456789" not in str(caught.value)
        assert "secret-value" not in str(caught.value)

    async def test_refused_emission_is_not_recorded(self, bus: EventBus, emit: Emitter) -> None:
        with bus.record() as recorder, pytest.raises(PayloadError):
            await emit(bus, SALE_CLOSED, sale_id="S-1")
        assert recorder.events == []


class TestPydantic:
    async def test_model_is_validated_from_fields(self, bus: EventBus, emit: Emitter) -> None:
        received = collect(bus, SALE_MODEL)
        await emit(bus, SALE_MODEL, sale_id="S-1", total_cents=5)
        assert received[0].data == SaleModel(sale_id="S-1", total_cents=5)
        assert dict(received[0].payload) == {"sale_id": "S-1", "total_cents": 5}

    async def test_instance_is_taken_as_it_is(self, bus: EventBus, emit: Emitter) -> None:
        received = collect(bus, SALE_MODEL)
        model = SaleModel(sale_id="S-1", total_cents=5)
        await emit(bus, SALE_MODEL, model)
        assert received[0].data is model

    async def test_validation_errors_name_every_bad_field(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        received = collect(bus, SALE_MODEL)
        with pytest.raises(PayloadError) as caught:
            await emit(bus, SALE_MODEL, total_cents="many", extra=1)
        message = str(caught.value)
        assert "unknown field 'extra'" in message
        assert "field 'sale_id' is missing" in message
        assert "field 'total_cents'" in message
        assert "many" not in message
        assert received == []

    async def test_unknown_field_alone_is_a_payload_error(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        with pytest.raises(PayloadError, match="unknown field 'extra'"):
            await emit(bus, SALE_MODEL, sale_id="S-1", total_cents=5, extra=1)

    def test_eventbus_does_not_import_pydantic(self) -> None:
        """Typed events with a dataclass never import pydantic."""
        code = (
            "import sys, dataclasses\n"
            "from eventbus import EventBus, Topic\n"
            "@dataclasses.dataclass\n"
            "class A:\n    x: int\n"
            "EventBus().emit_sync(Topic('a', A), x=1)\n"
            "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert result.returncode == 0, result.stderr


class TestMappingDataTypes:
    async def test_typeddict_data_is_the_mapping(self, bus: EventBus, emit: Emitter) -> None:
        received = collect(bus, SALE_DICT)
        await emit(bus, SALE_DICT, {"sale_id": "S-1", "total_cents": 1})
        await emit(bus, SALE_DICT, sale_id="S-2", total_cents=2, note="n")
        assert [dict(event.data) for event in received] == [
            {"sale_id": "S-1", "total_cents": 1},
            {"sale_id": "S-2", "total_cents": 2, "note": "n"},
        ]
        assert received[0].data == received[0].payload

    async def test_typeddict_bad_fields_are_one_payload_error(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        with pytest.raises(PayloadError) as caught:
            await emit(bus, SALE_DICT, {"total_cents": "1", "note": 2, "other": 0})
        message = str(caught.value)
        assert "unknown field 'other'" in message
        assert "field 'sale_id' is missing" in message
        assert "field 'total_cents' expected int, got str" in message
        assert "field 'note' expected str, got int" in message

    async def test_typeddict_needs_a_mapping(self, bus: EventBus, emit: Emitter) -> None:
        with pytest.raises(TypeError, match="expected an instance of SaleDict"):
            await emit(bus, SALE_DICT, ["sale_id"])

    async def test_mapping_data_type_checks_as_declare_does(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        """A mapping data type checks its keys; other keys are allowed, as with declare."""
        received = collect(bus, SALE_MAPPING)
        await emit(bus, SALE_MAPPING, sale_id="S-1", total_cents=1, extra=True)
        assert dict(received[0].data) == {"sale_id": "S-1", "total_cents": 1, "extra": True}
        with pytest.raises(PayloadError, match="field 'total_cents' is missing"):
            await emit(bus, SALE_MAPPING, sale_id="S-1")


class TestEventData:
    def test_untyped_event_data_is_its_payload(self) -> None:
        event = Event("sale.closed", {"sale_id": "S-1"})
        assert event.data == {"sale_id": "S-1"}
        assert isinstance(event.data, Mapping)

    def test_event_built_from_a_topic_is_typed(self) -> None:
        """Event(topic, data) makes a typed top-level event, to unit-test a typed handler."""
        sale = SaleClosed("S-1", 1)
        event = Event(SALE_CLOSED, sale, source="test")
        assert event.data is sale
        assert (event.name, event.source, event.depth, event.parent_id) == (
            "sale.closed",
            "test",
            0,
            None,
        )
        assert event["total_cents"] == 1

    def test_event_from_a_topic_checks_its_data(self) -> None:
        with pytest.raises(TypeError, match="expected an instance of SaleClosed"):
            Event(SALE_CLOSED, MemberCreated(1))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="needs the data"):
            Event(SALE_CLOSED)  # type: ignore[call-overload]
        with pytest.raises(PayloadError):
            Event(SALE_DICT, {"sale_id": 1})  # type: ignore[typeddict-item]

    def test_typed_event_pickles_with_its_data(self) -> None:
        event = Event(SALE_CLOSED, SaleClosed("S-1", 1))
        copied = pickle.loads(pickle.dumps(event))
        assert copied == event
        assert copied.data == SaleClosed("S-1", 1)
        assert copy.deepcopy(event) is event

    def test_typed_event_payload_is_read_only(self) -> None:
        event = Event(SALE_CLOSED, SaleClosed("S-1", 1))
        with pytest.raises(TypeError):
            event.payload["sale_id"] = "other"  # type: ignore[index]

    def test_repr_shows_no_value(self) -> None:
        event = Event(SALE_CLOSED, SaleClosed("secret-id", 1))
        assert "secret-id" not in repr(event)


class TestDeclaring:
    def test_declare_a_topic(self, bus: EventBus) -> None:
        """declare(topic) records its name, description, data type and re-entrancy."""
        spec = bus.declare(SALE_CLOSED)
        assert spec == EventSpec(
            "sale.closed", "A till sale was closed", None, False, data_type=SaleClosed
        )
        assert bus.catalog() == (spec,)

    def test_declare_a_topic_twice_is_harmless(self, bus: EventBus) -> None:
        assert bus.declare(SALE_CLOSED) == bus.declare(SALE_CLOSED)

    def test_declare_a_mapping_topic(self, bus: EventBus) -> None:
        spec = bus.declare(SALE_MAPPING)
        assert spec.payload is not None
        assert dict(spec.payload) == {"sale_id": str, "total_cents": int}

    def test_declare_with_a_data_type(self, bus: EventBus) -> None:
        spec = bus.declare("sale.closed", payload=SaleClosed)
        assert spec.data_type is SaleClosed
        assert spec.payload is None

    def test_declare_with_an_unsupported_class_is_a_type_error(self, bus: EventBus) -> None:
        with pytest.raises(TypeError, match="dataclass"):
            bus.declare("sale.closed", payload=int)

    def test_declare_a_topic_with_options_is_a_type_error(self, bus: EventBus) -> None:
        with pytest.raises(TypeError, match="from the topic"):
            bus.declare(SALE_CLOSED, description="other")
        assert bus.catalog() == ()

    def test_topic_of_another_data_type_is_a_value_error_at_declare(self, bus: EventBus) -> None:
        bus.declare(SALE_CLOSED)
        with pytest.raises(ValueError, match="already declared differently"):
            bus.declare(Topic("sale.closed", MemberCreated))

    async def test_topic_of_another_data_type_is_a_value_error_at_emit(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        bus.declare(SALE_CLOSED)
        received = collect(bus, "sale.closed")
        other = Topic("sale.closed", MemberCreated)
        with pytest.raises(ValueError, match="declared data type: SaleClosed"):
            await emit(bus, other, MemberCreated(1))
        assert received == []

    async def test_plain_name_of_a_declared_type_builds_the_data(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        """Emitting by name a name declared with a data type builds and checks it too."""
        bus.declare(SALE_CLOSED)
        received = collect(bus, SALE_CLOSED)
        await emit(bus, "sale.closed", sale_id="S-1", total_cents=1)
        assert received[0].data == SaleClosed("S-1", 1)
        with pytest.raises(PayloadError, match="field 'total_cents' is missing"):
            await emit(bus, "sale.closed", sale_id="S-1")

    async def test_declared_topic_keeps_the_emitted_instance(
        self, bus: EventBus, emit: Emitter
    ) -> None:
        bus.declare(SALE_CLOSED)
        received = collect(bus, SALE_CLOSED)
        sale = SaleClosed("S-1", 1)
        await emit(bus, SALE_CLOSED, sale)
        assert received[0].data is sale

    async def test_reentrant_topic_may_reenter(self, bus: EventBus) -> None:
        topic = Topic("tick", MemberCreated, reentrant=True)
        bus.declare(topic)
        depths: list[int] = []

        async def again(event: Event[MemberCreated]) -> None:
            depths.append(event.depth)
            if event.data.member_id < 2:
                await bus.emit(topic, member_id=event.data.member_id + 1)

        bus.on(topic, again)
        await bus.emit(topic, member_id=0)
        assert depths == [0, 1, 2]

    async def test_strict_bus_refuses_an_undeclared_topic(self, emit: Emitter) -> None:
        bus = EventBus("strict", strict=True)
        with pytest.raises(UnknownEventError):
            bus.on(SALE_CLOSED, print)
        with pytest.raises(UnknownEventError):
            await emit(bus, SALE_CLOSED, SaleClosed("S-1", 1))
        bus.declare(SALE_CLOSED)
        report = await emit(bus, SALE_CLOSED, SaleClosed("S-1", 1))
        assert report.ok


class TestTopicsWhereverANameIs:
    async def test_on_once_off(self, bus: EventBus) -> None:
        seen: list[str] = []

        def handler(event: Event[SaleClosed]) -> None:
            seen.append(event.data.sale_id)

        bus.on(SALE_CLOSED, handler)
        bus.once(SALE_CLOSED, lambda event: seen.append("once"))
        await bus.emit(SALE_CLOSED, SaleClosed("a", 1))
        assert bus.off(SALE_CLOSED, handler) is True
        await bus.emit(SALE_CLOSED, SaleClosed("b", 1))
        assert seen == ["a", "once"]

    async def test_decorator(self, bus: EventBus) -> None:
        seen: list[int] = []

        @bus.on(SALE_CLOSED, priority=5)
        async def handler(event: Event[SaleClosed]) -> None:
            seen.append(event.data.total_cents)

        await bus.emit(SALE_CLOSED, sale_id="a", total_cents=7)
        assert seen == [7]
        assert bus.listeners(SALE_CLOSED)[0].priority == 5

    def test_subscribed(self, bus: EventBus) -> None:
        seen: list[Event[SaleClosed]] = []
        with bus.subscribed(SALE_CLOSED, seen.append):
            assert bus.has_listeners(SALE_CLOSED)
            bus.emit_sync(SALE_CLOSED, SaleClosed("a", 1))
        assert not bus.has_listeners(SALE_CLOSED)
        assert len(seen) == 1

    def test_introspection(self, bus: EventBus) -> None:
        bus.on(SALE_CLOSED, print)
        assert bus.listeners(SALE_CLOSED) == bus.listeners("sale.closed")
        assert bus.listener_count(SALE_CLOSED) == 1
        assert bus.has_listeners(SALE_CLOSED)
        assert bus.topics() == ("sale.closed",)
        assert bus.clear(SALE_CLOSED) == 1

    def test_muted(self, bus: EventBus) -> None:
        seen = collect(bus, SALE_CLOSED)
        with bus.muted(SALE_CLOSED):
            bus.emit_sync(SALE_CLOSED, SaleClosed("a", 1))
        assert seen == []

    def test_record(self, bus: EventBus) -> None:
        with bus.record(SALE_CLOSED) as recorder:
            bus.emit_sync(SALE_CLOSED, SaleClosed("a", 1))
            bus.emit_sync("other.event")
        assert recorder.names == ["sale.closed"]
        assert recorder.events[0].data == SaleClosed("a", 1)

    def test_recorder_counts_a_topic_by_its_name(self, bus: EventBus) -> None:
        with bus.record() as recorder:
            bus.emit_sync(SALE_CLOSED, SaleClosed("a", 1))
            bus.emit_sync(SALE_CLOSED, SaleClosed("b", 2))
        assert recorder.count(SALE_CLOSED) == recorder.count("sale.closed") == 2

    def test_testing_helpers(self, bus: EventBus) -> None:
        with recording(bus, SALE_CLOSED) as emitted:
            bus.emit_sync(SALE_CLOSED, SaleClosed("a", 1))
            bus.emit_sync(SALE_CLOSED, SaleClosed("b", 2))
        assert emitted.assert_emitted(SALE_CLOSED, sale_id="b").data == SaleClosed("b", 2)
        emitted.assert_emitted_once(SALE_CLOSED, total_cents=1)
        emitted.assert_not_emitted(SALE_CLOSED, sale_id="c")
        emitted.assert_emitted_in_order([SALE_CLOSED, (SALE_CLOSED, {"sale_id": "b"})])
        assert len(emitted.find(SALE_CLOSED)) == 2
        with pytest.raises(AssertionError, match="sale_id='c'"):
            emitted.assert_emitted(SALE_CLOSED, sale_id="c")

    def test_untyped_handler_on_a_pattern_sees_typed_events(self, bus: EventBus) -> None:
        """A handler on a pattern reads a typed event's payload like any other."""
        seen: list[Any] = []
        bus.on("sale.*", lambda event: seen.append(event["sale_id"]))
        bus.emit_sync(SALE_CLOSED, SaleClosed("a", 1))
        assert seen == ["a"]

    def test_predicate_reads_the_data(self, bus: EventBus) -> None:
        seen: list[int] = []
        bus.on(
            SALE_CLOSED,
            lambda event: seen.append(event.data.total_cents),
            predicate=lambda event: event.data.total_cents > 1,
        )
        bus.emit_sync(SALE_CLOSED, SaleClosed("a", 1))
        bus.emit_sync(SALE_CLOSED, SaleClosed("b", 2))
        assert seen == [2]


class TestReceived:
    async def test_received_event_gets_data_from_this_bus_declaration(self, bus: EventBus) -> None:
        """An event made elsewhere (plain payload) gets its data rebuilt from the declaration."""
        bus.declare(SALE_CLOSED)
        received = collect(bus, SALE_CLOSED)
        made_elsewhere = Event("sale.closed", {"sale_id": "S-1", "total_cents": 1}, source="x")
        await bus.emit_received(made_elsewhere)
        assert received[0].data == SaleClosed("S-1", 1)
        assert received[0].id == made_elsewhere.id
        assert received[0].source == "x"

    async def test_received_event_that_does_not_fit_is_a_payload_error(self, bus: EventBus) -> None:
        bus.declare(SALE_CLOSED)
        received = collect(bus, SALE_CLOSED)
        with pytest.raises(PayloadError, match="field 'total_cents' expected int, got str"):
            await bus.emit_received(Event("sale.closed", {"sale_id": "S", "total_cents": "1"}))
        assert received == []

    async def test_received_undeclared_event_keeps_its_mapping(self, bus: EventBus) -> None:
        received = collect(bus, "sale.closed")
        await bus.emit_received(Event("sale.closed", {"sale_id": "S"}))
        assert received[0].data == {"sale_id": "S"}


class TestConcurrency:
    def test_threads_emitting_a_new_topic_all_succeed(self, bus: EventBus) -> None:
        """The data type's checks are read once, safely, while threads emit at once."""

        @dataclass
        class Fresh:
            value: int

        topic = Topic("fresh.value", Fresh)
        seen: list[int] = []
        bus.on(topic, lambda event: seen.append(event.data.value))
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def work(start: int) -> None:
            barrier.wait(HANG_GUARD)
            try:
                for value in range(start, start + 50):
                    bus.emit_sync(topic, value=value)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i * 50,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_GUARD)
        assert errors == []
        assert sorted(seen) == list(range(400))

    async def test_tasks_emitting_typed_events_each_get_their_own_data(self, bus: EventBus) -> None:
        seen: list[tuple[str, int]] = []

        async def handler(event: Event[SaleClosed]) -> None:
            await asyncio.sleep(0)
            seen.append((event.data.sale_id, event.data.total_cents))

        bus.on(SALE_CLOSED, handler)
        await asyncio.gather(
            *(bus.emit(SALE_CLOSED, sale_id=str(i), total_cents=i) for i in range(20))
        )
        assert sorted(seen) == sorted((str(i), i) for i in range(20))
