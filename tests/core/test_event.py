"""Event: construction, validation, immutability, payload view, ids and defaults."""

from __future__ import annotations

import copy
import operator
import os
import pickle
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from eventbus import Event, EventBus

ID_FORMAT = re.compile(r"[0-9a-f]{16}-[0-9a-f]+")


class _ReadOnlyMapping(Mapping[str, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


# ---------------------------------------------------------------- constructor


class TestConstructor:
    def test_keeps_its_fields(self) -> None:
        """Event keeps name payload and source."""
        event = Event("sale.closed", {"amount": 12, "who": "ann"}, source="caisse")

        assert event.name == "sale.closed"
        assert dict(event.payload) == {"amount": 12, "who": "ann"}
        assert event.source == "caisse"

    def test_no_payload_is_empty(self) -> None:
        """Event without payload has an empty payload mapping."""
        event = Event("sale.closed")

        assert isinstance(event.payload, Mapping)
        assert dict(event.payload) == {}
        assert len(event.payload) == 0

    def test_payload_none_is_empty(self) -> None:
        """Event with payload none has an empty payload mapping."""
        assert dict(Event("sale.closed", None).payload) == {}

    def test_source_defaults_to_none(self) -> None:
        """Event defaults to no source."""
        assert Event("sale.closed").source is None

    def test_built_directly_is_top_level(self) -> None:
        """Event built directly is top level."""
        event = Event("sale.closed", {"a": 1})

        assert event.parent_id is None
        assert event.depth == 0

    def test_timestamp_at_construction(self) -> None:
        """Event timestamp is time time at construction."""
        before = time.time()
        event = Event("sale.closed")
        after = time.time()

        assert isinstance(event.timestamp, float)
        assert before <= event.timestamp <= after

    @pytest.mark.parametrize(
        "payload",
        [
            {"k": 1},
            MappingProxyType({"k": 1}),
            _ReadOnlyMapping({"k": 1}),
        ],
        ids=["dict", "mappingproxy", "custom-mapping"],
    )
    def test_any_mapping_payload(self, payload: Mapping[str, Any]) -> None:
        """Event accepts any mapping as payload."""
        event = Event("a.b", payload)

        assert dict(event.payload) == {"k": 1}
        assert event["k"] == 1

    def test_payload_key_name_or_source(self) -> None:
        """Event payload key may be called name or source."""
        event = Event("a.b", {"name": "n", "source": "s"}, source="real")

        assert event.name == "a.b"
        assert event.source == "real"
        assert event["name"] == "n"
        assert event["source"] == "s"

    def test_copies_the_payload(self) -> None:
        """Event copies the payload given to it."""
        payload = {"amount": 1}
        event = Event("sale.closed", payload)

        payload["amount"] = 2
        payload["extra"] = True

        assert dict(event.payload) == {"amount": 1}


# ---------------------------------------------------------------- validation


class TestValidation:
    @pytest.mark.parametrize("name", [None, 42, b"sale.closed", ["sale"], 1.5])
    def test_non_str_name(self, name: object) -> None:
        """Event with non-str name raises TypeError."""
        with pytest.raises(TypeError, match="str"):
            Event(name)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "name", ["", "sale..closed", ".sale", "sale.", "sale closed", "user.*", "*"]
    )
    def test_invalid_name(self, name: str) -> None:
        """Event with invalid name raises ValueError naming it."""
        with pytest.raises(ValueError, match=re.escape(repr(name))):
            Event(name)

    @pytest.mark.parametrize("payload", [[("k", 1)], "k=1", 42, {"k", "v"}])
    def test_non_mapping_payload(self, payload: object) -> None:
        """Event with non-mapping payload raises TypeError."""
        with pytest.raises(TypeError, match="payload"):
            Event("a.b", payload)  # type: ignore[arg-type]

    @pytest.mark.parametrize("source", [42, b"caisse", ["caisse"]])
    def test_non_str_source(self, source: object) -> None:
        """Event with non-str source raises TypeError."""
        with pytest.raises(TypeError, match="source"):
            Event("a.b", source=source)  # type: ignore[arg-type]

    def test_source_keyword_only(self) -> None:
        """Event source is keyword only."""
        with pytest.raises(TypeError):
            Event("a.b", {}, "caisse")  # type: ignore[misc]


# ---------------------------------------------------------------- immutability


class TestImmutability:
    @pytest.mark.parametrize(
        ("attribute", "value"),
        [
            ("name", "other"),
            ("payload", {}),
            ("source", "x"),
            ("id", "x"),
            ("parent_id", "x"),
            ("depth", 3),
            ("timestamp", 0.0),
            ("brand_new", 1),
        ],
    )
    def test_attributes_read_only(self, attribute: str, value: object) -> None:
        """Event attributes cannot be set."""
        event = Event("a.b", {"k": 1}, source="s")

        with pytest.raises(AttributeError):
            setattr(event, attribute, value)

        assert event.name == "a.b"
        assert event.source == "s"
        assert event.depth == 0

    @pytest.mark.parametrize("attribute", ["name", "payload", "source", "id", "depth"])
    def test_attributes_undeletable(self, attribute: str) -> None:
        """Event attributes cannot be deleted."""
        event = Event("a.b", {"k": 1}, source="s")

        with pytest.raises(AttributeError):
            delattr(event, attribute)

        assert event.name == "a.b"
        assert event.source == "s"

    def test_slotted(self) -> None:
        """Event is slotted."""
        assert not hasattr(Event("a.b"), "__dict__")

    def test_payload_item_assignment(self) -> None:
        """Event payload rejects item assignment."""
        event = Event("a.b", {"k": 1})

        with pytest.raises(TypeError):
            event.payload["k"] = 2  # type: ignore[index]

        assert event["k"] == 1

    def test_payload_item_deletion(self) -> None:
        """Event payload rejects item deletion."""
        event = Event("a.b", {"k": 1})

        with pytest.raises(TypeError):
            del event.payload["k"]  # type: ignore[attr-defined]

        assert event["k"] == 1

    def test_empty_payload_assignment(self) -> None:
        """Empty event payload rejects item assignment."""
        event = Event("a.b")

        with pytest.raises(TypeError):
            event.payload["k"] = 2  # type: ignore[index]

        assert dict(Event("c.d").payload) == {}

    def test_payload_no_mutators(self) -> None:
        """Event payload has no mutating methods."""
        payload = Event("a.b", {"k": 1}).payload

        for method in ("update", "pop", "popitem", "clear", "setdefault"):
            assert not hasattr(payload, method), method

    async def test_emitted_payload_read_only(self, bus: EventBus) -> None:
        """Payload of an emitted event is read-only."""
        seen: list[Event] = []
        bus.on("a.b", seen.append)

        await bus.emit("a.b", k=1)

        with pytest.raises(TypeError):
            seen[0].payload["k"] = 2  # type: ignore[index]
        assert seen[0]["k"] == 1


# ---------------------------------------------------------------- item access


class TestItemAccess:
    def test_item_access(self) -> None:
        """Event item access reads the payload."""
        event = Event("a.b", {"amount": 12})

        assert event["amount"] == 12
        assert event["amount"] == event.payload["amount"]

    def test_missing_key(self) -> None:
        """Event item access on a missing key raises KeyError."""
        with pytest.raises(KeyError, match="missing"):
            Event("a.b", {"amount": 12})["missing"]

    def test_not_iterable(self) -> None:
        """Iterating an Event yields its log rendering, not its payload values."""
        assert 12 not in list(Event("a.b", {"amount": 12}))


# ---------------------------------------------------------------- a record, not a tuple


class TestNotATuple:
    def test_no_len(self) -> None:
        """Len of an event raises type error pointing to the payload.

        Regression: len(event) gave the length of the tuple underneath.
        """
        event = Event("a.b", {"amount": 12})

        with pytest.raises(TypeError, match=r"len\(event\.payload\)"):
            len(event)

    @pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge])
    def test_no_ordering(self, compare: Callable[[Any, Any], Any]) -> None:
        """Events cannot be ordered.

        Regression: events compared like the tuples underneath.
        """
        with pytest.raises(TypeError, match="not supported between instances of 'Event'"):
            compare(Event("a.b", {"k": 1}), Event("a.b", {"k": 2}))

    @pytest.mark.parametrize(
        ("combine", "other"),
        [(operator.add, ()), (operator.add, ("x",)), (operator.mul, 2)],
        ids=["+ ()", "+ ('x',)", "* 2"],
    )
    def test_no_concat_or_repeat(self, combine: Callable[[Any, Any], Any], other: object) -> None:
        """An event cannot be concatenated or repeated.

        Regression: event + () and event * 2 built plain tuples of the fields.
        """
        with pytest.raises(TypeError, match="unsupported operand"):
            combine(Event("a.b", {"k": 1}), other)

    @pytest.mark.parametrize("payload", [None, {}, {"k": 1}])
    def test_always_truthy(self, payload: dict[str, Any] | None) -> None:
        """An event is a record: refusing len() must not make bool() fail."""
        assert bool(Event("a.b", payload)) is True

    def test_equal_fields_not_equal(self) -> None:
        """Each event is one emission: equality is by id."""
        first, second = Event("a.b", {"k": 1}), Event("a.b", {"k": 1})

        assert first != second
        assert first.id != second.id


# ---------------------------------------------------------------- ids


class TestIds:
    def test_id_format(self) -> None:
        """``event_id`` is a hex prefix and a hex counter."""
        event_id = Event("a.b").id

        assert isinstance(event_id, str)
        assert ID_FORMAT.fullmatch(event_id), event_id

    def test_id_stable(self) -> None:
        """``event_id`` is stable for one event."""
        event = Event("a.b")

        assert event.id == event.id

    def test_distinct(self) -> None:
        """Many event ids are distinct."""
        ids = {Event("a.b").id for _ in range(10_000)}

        assert len(ids) == 10_000

    def test_count_up(self) -> None:
        """Event ids of one process share a prefix and count up."""
        first, second = Event("a.b").id, Event("a.b").id
        prefix_1, counter_1 = first.split("-")
        prefix_2, counter_2 = second.split("-")

        assert prefix_1 == prefix_2
        assert int(counter_2, 16) > int(counter_1, 16)

    async def test_emitted_ids(self, bus: EventBus) -> None:
        """Emitted event ids are well formed and distinct."""
        ids = [(await bus.emit("a.b")).event.id for _ in range(100)]
        ids.append(bus.emit_sync("a.b").event.id)
        ids.append(Event("a.b").id)

        assert all(ID_FORMAT.fullmatch(event_id) for event_id in ids), ids
        assert len(set(ids)) == len(ids)

    def test_other_process(self) -> None:
        """Event ids differ in another process."""
        code = "from eventbus import Event; print(Event('a.b').id)"
        other = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
        mine = Event("a.b").id

        assert ID_FORMAT.fullmatch(other), other
        assert other.split("-")[0] != mine.split("-")[0]

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_forked_child(self) -> None:
        """Event ids differ in a forked child."""
        Event("a.b")  # the parent has made ids before forking
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive
            pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.write(write_end, Event("a.b").id.encode())
            finally:
                os._exit(0)
        os.close(write_end)
        try:
            child_id = os.read(read_end, 100).decode()
        finally:
            os.close(read_end)
            os.waitpid(pid, 0)
        parent_id = Event("a.b").id

        assert ID_FORMAT.fullmatch(child_id), child_id
        assert child_id.split("-")[0] != parent_id.split("-")[0]


# ---------------------------------------------------------------- repr


class TestRepr:
    def test_repr(self) -> None:
        """Event repr shows name payload keys source and id."""
        event = Event("sale.closed", {"amount": 12}, source="caisse")
        text = repr(event)

        assert text.startswith("Event(")
        assert "'sale.closed'" in text
        assert "payload_keys=['amount']" in text
        assert "'caisse'" in text
        assert event.id in text

    def test_hides_values(self) -> None:
        """A repr ends up in logs and tracebacks; a payload may hold personal data."""
        event = Event("member.created", {"email": "alice@example.org"})

        assert "alice@example.org" not in repr(event)


# ---------------------------------------------------------------- copying and pickling


class TestCopies:
    @pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
    def test_copy_is_itself(self, copier: Callable[[Any], Any]) -> None:
        """Copy of an event is the event itself.

        Regression: a copied Event was neither == to nor hashed like its original.
        """
        event = Event("a.b", {"k": [1]}, source="s")

        assert copier(event) is event

    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    def test_pickle_round_trip(self, protocol: int) -> None:
        """Pickled event round trips equal with the same id and hash.

        Regression: a pickled Event was neither == to nor hashed like its original.
        """
        event = Event("a.b", {"k": 1}, source="s")

        copy_ = pickle.loads(pickle.dumps(event, protocol))

        assert type(copy_) is Event
        assert copy_ == event
        assert hash(copy_) == hash(event)
        assert copy_.id == event.id
        assert (copy_.name, dict(copy_.payload), copy_.source) == ("a.b", {"k": 1}, "s")
        assert (copy_.parent_id, copy_.depth, copy_.timestamp) == (None, 0, event.timestamp)

    async def test_pickle_keeps_nesting(self, bus: EventBus) -> None:
        """Pickled nested event keeps its ``parent_id`` and depth."""
        inner: list[Event] = []

        async def outer(event: Event) -> None:
            await bus.emit("inner", n=1)

        bus.on("outer", outer)
        bus.on("inner", inner.append)
        report = await bus.emit("outer")

        copy_ = pickle.loads(pickle.dumps(inner[0]))

        assert copy_ == inner[0]
        assert copy_.parent_id == report.event.id
        assert copy_.depth == 1
        assert copy_["n"] == 1
