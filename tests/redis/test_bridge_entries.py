"""The stream entry codec (``eventbus.redis._entries``): an Event as the flat string
fields of a Redis Streams entry, and back. Pure functions: no server needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventbus import Event, EventBus, EventBusError, PayloadError, ReentrancyError
from eventbus.redis._entries import FORMAT, BadEntry, Received, decode, encode, text


async def nested_event(bus: EventBus) -> Event:
    """A real event emitted by a handler: it has a source, a parent and depth 1."""
    inner: list[Event] = []

    async def on_sale(event: Event) -> None:
        report = await bus.emit("ledger.updated", source="caisse", amount=12.5, lines=[1, 2])
        inner.append(report.event)

    bus.on("sale.closed", on_sale)
    await bus.emit("sale.closed")
    (event,) = inner
    return event


def valid_fields(**changes: str | None) -> dict[str, str]:
    """The fields of a well-formed entry, with some changed (None: removed)."""
    fields = {
        "v": FORMAT,
        "name": "sale.closed",
        "id": "0123456789abcdef-2a",
        "depth": "1",
        "ts": "1700000000.25",
        "payload": '{"total":3}',
        "parent": "0123456789abcdef-29",
        "chain": "order.paid",
    }
    for key, value in changes.items():
        if value is None:
            del fields[key]
        else:
            fields[key] = value
    return fields


# ---------------------------------------------------------------- round trip


async def test_decode_of_encode_keeps_every_field_of_the_event(bus: EventBus) -> None:
    event = await nested_event(bus)

    received = decode(encode(event, ("sale.closed",), "billing", "eventbus"))

    copy = received.event
    assert type(copy) is Event
    assert copy.name == "ledger.updated"
    assert dict(copy.payload) == {"amount": 12.5, "lines": [1, 2]}
    assert copy.source == "caisse"
    assert copy.id == event.id
    assert isinstance(copy.id, str)
    assert copy.parent_id == event.parent_id is not None
    assert copy.depth == event.depth == 1
    assert repr(copy.timestamp) == repr(event.timestamp)
    assert copy.timestamp == event.timestamp
    assert copy == event  # events are equal when their ids are


async def test_decode_of_encode_gives_back_the_ancestors_and_the_origin(bus: EventBus) -> None:
    event = await nested_event(bus)

    received = decode(encode(event, ("order.paid", "sale.closed"), "billing", "eventbus"))

    assert received.ancestors == ("order.paid", "sale.closed")
    assert received.origin == "billing"


def test_a_top_level_event_round_trips_without_source_parent_chain_or_origin() -> None:
    event = Event("sale.closed", {"total": 3})

    fields = encode(event, (), "", "eventbus")
    received = decode(fields)

    assert set(fields) == {"v", "name", "id", "ts", "payload"}  # depth 0 is the default
    assert received.event.source is None
    assert received.event.parent_id is None
    assert received.event.depth == 0
    assert received.ancestors == ()
    assert received.origin == ""


def test_every_field_is_a_str_and_the_version_is_1() -> None:
    fields = encode(Event("sale.closed", {"total": 3}, source="caisse"), ("a",), "g", "s")

    assert all(type(key) is str and type(value) is str for key, value in fields.items())
    assert fields["v"] == "1" == FORMAT


def test_the_chain_is_the_ancestor_names_separated_by_spaces_outermost_first() -> None:
    fields = encode(Event("c"), ("a", "b.x", "c-d"), "", "eventbus")

    assert fields["chain"] == "a b.x c-d"


def test_unicode_in_the_payload_round_trips_and_is_stored_unescaped() -> None:
    payload = {"client": "Zoë Ĺ 🎉", "城市": "東京", "note": 'tab\tnewline\n"quote"'}

    fields = encode(Event("member.created", payload, source="café"), (), "", "eventbus")
    received = decode(fields)

    assert dict(received.event.payload) == payload
    assert received.event.source == "café"
    assert "🎉" in fields["payload"]
    assert "東京" in fields["payload"]


def test_an_empty_payload_is_the_empty_json_object() -> None:
    fields = encode(Event("sale.closed"), (), "", "eventbus")

    assert fields["payload"] == "{}"
    assert dict(decode(fields).event.payload) == {}


def test_the_payload_is_compact_json() -> None:
    fields = encode(Event("sale.closed", {"a": [1, 2], "b": {"c": None}}), (), "", "eventbus")

    assert fields["payload"] == '{"a":[1,2],"b":{"c":null}}'
    assert json.loads(fields["payload"]) == {"a": [1, 2], "b": {"c": None}}


def test_encode_refuses_a_payload_json_cannot_carry_naming_event_key_and_stream() -> None:
    event = Event("sale.closed", {"lines": [{"price": 1.0}, {"price": float("nan")}]})

    with pytest.raises(PayloadError) as caught:
        encode(event, (), "", "orders")

    message = str(caught.value)
    assert "'sale.closed'" in message
    assert "'lines[1].price'" in message
    assert "'orders'" in message
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, EventBusError)


# ---------------------------------------------------------------- decode input


def test_decode_accepts_bytes_keys_and_values_as_a_client_returns_them() -> None:
    event = Event("sale.closed", {"client": "Zoë"}, source="caisse")
    fields = encode(event, ("order.paid",), "billing", "eventbus")
    raw = {key.encode(): value.encode() for key, value in fields.items()}

    received = decode(raw)

    assert received.event.id == event.id
    assert dict(received.event.payload) == {"client": "Zoë"}
    assert received.event.source == "caisse"
    assert received.ancestors == ("order.paid",)
    assert received.origin == "billing"


def test_decode_accepts_str_keys_and_values() -> None:
    received = decode(valid_fields())

    assert received.event.name == "sale.closed"
    assert received.event.id == "0123456789abcdef-2a"
    assert received.event.parent_id == "0123456789abcdef-29"
    assert received.event.depth == 1
    assert received.event.timestamp == 1700000000.25
    assert dict(received.event.payload) == {"total": 3}
    assert received.ancestors == ("order.paid",)


def test_text_decodes_bytes_and_leaves_str_alone() -> None:
    assert text(b"caf\xc3\xa9") == "café"
    assert text("café") == "café"


# ---------------------------------------------------------------- bad entries


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"v": None}, id="no-version"),
        pytest.param({"v": "2"}, id="unknown-version"),
        pytest.param({"v": ""}, id="empty-version"),
        pytest.param({"name": None}, id="no-name"),
        pytest.param({"id": None}, id="no-id"),
        pytest.param({"id": ""}, id="empty-id"),
        pytest.param({"ts": None}, id="no-ts"),
        pytest.param({"payload": None}, id="no-payload"),
        pytest.param({"name": "sale closed"}, id="name-with-space"),
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"name": "sale.*"}, id="name-is-a-pattern"),
        pytest.param({"depth": "one"}, id="depth-not-a-number"),
        pytest.param({"depth": "1.5"}, id="depth-not-an-int"),
        pytest.param({"depth": "-1"}, id="negative-depth"),
        pytest.param({"ts": "yesterday"}, id="ts-not-a-number"),
        pytest.param({"payload": "[1, 2]"}, id="payload-a-list"),
        pytest.param({"payload": '"text"'}, id="payload-a-str"),
        pytest.param({"payload": "null"}, id="payload-null"),
        pytest.param({"payload": "{not json"}, id="payload-bad-json"),
        pytest.param({"chain": "order.paid bad!name"}, id="invalid-chain-name"),
        pytest.param({"chain": "order.*"}, id="chain-pattern"),
    ],
)
def test_decode_refuses_a_malformed_entry_with_bad_entry(changes: dict[str, str | None]) -> None:
    with pytest.raises(BadEntry):
        decode(valid_fields(**changes))


def test_bad_entry_is_a_value_error() -> None:
    assert issubclass(BadEntry, ValueError)


@pytest.mark.parametrize("missing", ["name", "id", "ts", "payload"])
def test_a_missing_field_is_named_in_the_error(missing: str) -> None:
    with pytest.raises(BadEntry, match=f"'{missing}'"):
        decode(valid_fields(**{missing: None}))


def test_a_missing_depth_means_a_top_level_event() -> None:
    assert decode(valid_fields(depth=None)).event.depth == 0


def test_a_wrong_version_is_named_in_the_error() -> None:
    with pytest.raises(BadEntry, match="'2'"):
        decode(valid_fields(v="2"))


def test_bytes_entries_are_refused_like_str_ones() -> None:
    raw: dict[Any, Any] = {
        key.encode(): value.encode() for key, value in valid_fields(depth="-1").items()
    }

    with pytest.raises(BadEntry):
        decode(raw)


# ---------------------------------------------------------------- received chain


async def test_a_received_chain_makes_a_loop_through_processes_a_reentrancy_error(
    bus: EventBus,
) -> None:
    received = decode(valid_fields(chain="order.paid sale.closed", depth="2", name="ledger.x"))
    refusals: list[ReentrancyError] = []

    @bus.on("ledger.x")
    async def emit_an_ancestor(event: Event) -> None:
        try:
            await bus.emit("order.paid")
        except ReentrancyError as refusal:
            refusals.append(refusal)

    report = await bus.emit_received(received.event, chain=received.ancestors)

    assert report.ok
    assert [refusal.chain for refusal in refusals] == [
        ("order.paid", "sale.closed", "ledger.x", "order.paid")
    ]


async def test_an_emission_under_a_received_event_nests_below_it(bus: EventBus) -> None:
    received = decode(valid_fields(chain="order.paid sale.closed", depth="2", name="ledger.x"))
    children: list[Event] = []

    @bus.on("ledger.x")
    async def emit_a_child(event: Event) -> None:
        children.append((await bus.emit("ledger.written")).event)

    await bus.emit_received(received.event, chain=received.ancestors)

    assert [(child.parent_id, child.depth) for child in children] == [(received.event.id, 3)]


async def test_an_entry_without_chain_is_received_as_a_top_level_emission(
    bus: EventBus,
) -> None:
    received = decode(valid_fields(chain=None, parent=None, depth="0"))
    seen: list[Event] = []
    bus.on(received.event.name, seen.append)

    report = await bus.emit_received(received.event, chain=received.ancestors)

    assert received.ancestors == ()
    assert seen == [received.event]
    assert report.event is received.event


def test_received_holds_event_ancestors_and_origin() -> None:
    event = Event("sale.closed")

    received = Received(event, ("a",), "billing")

    assert received.event is event
    assert received.ancestors == ("a",)
    assert received.origin == "billing"
