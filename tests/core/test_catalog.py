"""Declared events: specs, the catalog, payload checks and strict mode."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Optional

import pytest
import structlog

from eventbus import (
    EmitReport,
    Event,
    EventBus,
    EventSpec,
    PayloadError,
    UnknownEventError,
)

EMITTERS = ["emit", "emit_sync", "publish"]


async def emit_with(bus: EventBus, how: str, name: str, /, **payload: Any) -> EmitReport:
    """Emit through ``emit``, ``emit_sync`` or ``publish`` (awaiting the task)."""
    if how == "emit":
        return await bus.emit(name, **payload)
    if how == "emit_sync":
        return bus.emit_sync(name, **payload)
    return await bus.publish(name, **payload)


def snapshot(bus: EventBus) -> tuple[Any, ...]:
    return bus.catalog(), bus.topics(), bus.listener_count()


class Money:
    pass


class Euros(Money):
    pass


@pytest.fixture
def sale_bus(bus: EventBus) -> EventBus:
    """A bus where "sale.closed" requires an int amount and an optional str note."""
    bus.declare("sale.closed", payload={"amount": int, "note": str | None})
    return bus


@pytest.fixture
def strict_bus() -> EventBus:
    bus = EventBus("strict", strict=True)
    bus.declare("sale.closed")
    bus.declare("member.created")
    bus.declare("stock.changed")
    return bus


# ---------------------------------------------------------------- declare and catalog


def test_declare_returns_a_spec_with_the_given_fields(bus: EventBus) -> None:
    spec = bus.declare(
        "sale.closed",
        description="A sale was paid for.",
        payload={"amount": int},
        reentrant=True,
    )

    assert isinstance(spec, EventSpec)
    assert spec.name == "sale.closed"
    assert spec.description == "A sale was paid for."
    assert dict(spec.payload or {}) == {"amount": int}
    assert spec.reentrant is True


def test_declare_defaults_to_no_description_no_payload_not_reentrant(bus: EventBus) -> None:
    spec = bus.declare("sale.closed")

    assert (spec.name, spec.description, spec.payload, spec.reentrant) == (
        "sale.closed",
        "",
        None,
        False,
    )


def test_declared_payload_spec_is_read_only(bus: EventBus) -> None:
    spec = bus.declare("sale.closed", payload={"amount": int})

    with pytest.raises(TypeError):
        spec.payload["amount"] = str  # type: ignore[index]
    assert spec.payload == {"amount": int}


def test_declared_payload_spec_is_copied_from_the_callers_dict(bus: EventBus) -> None:
    given = {"amount": int}
    spec = bus.declare("sale.closed", payload=given)

    given["extra"] = str

    assert dict(spec.payload or {}) == {"amount": int}


def test_spec_is_read_only(bus: EventBus) -> None:
    spec = bus.declare("sale.closed")

    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert spec.name == "sale.closed"


def test_spec_with_a_payload_is_hashable_and_equal_specs_hash_equal(bus: EventBus) -> None:
    """Regression: hashing an EventSpec with a payload raised TypeError (mappingproxy)."""
    spec = bus.declare("sale.closed", description="paid", payload={"amount": int})
    twin = EventBus("other").declare("sale.closed", description="paid", payload={"amount": int})

    assert spec is not twin
    assert spec == twin
    assert hash(spec) == hash(twin)
    assert {spec, twin} == {spec}


def test_catalog_is_empty_before_any_declaration(bus: EventBus) -> None:
    assert bus.catalog() == ()


def test_catalog_is_a_tuple_of_specs_sorted_by_name(bus: EventBus) -> None:
    b = bus.declare("b")
    a_x = bus.declare("a.x")
    a = bus.declare("a")

    catalog = bus.catalog()

    assert isinstance(catalog, tuple)
    assert catalog == (a, a_x, b)


def test_catalog_is_per_bus(bus: EventBus) -> None:
    bus.declare("sale.closed")

    assert EventBus("other").catalog() == ()


def test_redeclaring_the_same_spec_returns_the_existing_one(bus: EventBus) -> None:
    first = bus.declare("sale.closed", description="paid", payload={"amount": int})

    again = bus.declare("sale.closed", description="paid", payload={"amount": int})

    assert again is first
    assert bus.catalog() == (first,)


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "something else"},
        {"payload": {"amount": float}},
        {"payload": None},
        {"reentrant": True},
    ],
)
def test_redeclaring_differently_is_a_value_error(bus: EventBus, changes: dict[str, Any]) -> None:
    original = {"description": "paid", "payload": {"amount": int}, "reentrant": False}
    first = bus.declare("sale.closed", **original)

    with pytest.raises(ValueError, match=r"sale\.closed.*already declared"):
        bus.declare("sale.closed", **{**original, **changes})

    assert bus.catalog() == (first,)


# ---------------------------------------------------------------- declare validation


@pytest.mark.parametrize("name", ["sale.*", "*"])
def test_declaring_a_pattern_is_a_value_error(bus: EventBus, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        bus.declare(name)

    assert bus.catalog() == ()


@pytest.mark.parametrize("name", ["", "sale..closed", "sale closed", "vente.clôturée"])
def test_declaring_an_invalid_name_is_a_value_error(bus: EventBus, name: str) -> None:
    with pytest.raises(ValueError, match="invalid event name"):
        bus.declare(name)

    assert bus.catalog() == ()


def test_declaring_a_non_str_name_is_a_type_error(bus: EventBus) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        bus.declare(42)  # type: ignore[arg-type]

    assert bus.catalog() == ()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"amount": "int"}, r"payload\['amount'\].*'int'"),
        ({"amount": 3}, r"payload\['amount'\].*3"),
        ({"amount": None}, r"payload\['amount'\].*None"),
        ({"amount": list[int]}, r"payload\['amount'\]"),
        ({1: int}, r"payload keys must be str"),
        ([("amount", int)], r"payload must be a mapping"),
        ("amount", r"payload must be a mapping"),
    ],
)
def test_declaring_a_bad_payload_spec_is_a_type_error(
    bus: EventBus, payload: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        bus.declare("sale.closed", payload=payload)

    assert bus.catalog() == ()


@pytest.mark.parametrize(
    "expected",
    [
        dict[str, int] | None,
        list[int] | int,
        list[int],
        Optional[list[int]],  # noqa: UP045 - typing.Union, not types.UnionType: both must fail
    ],
    ids=["dict[str, int] | None", "list[int] | int", "list[int]", "Optional[list[int]]"],
)
def test_declaring_a_payload_type_isinstance_cannot_use_is_a_type_error(
    bus: EventBus, expected: Any
) -> None:
    """Regression: declare accepted a union of parameterized generics; every emit then failed."""
    existing = bus.declare("sale.opened", payload={"till": str})

    with pytest.raises(TypeError, match=r"payload\['items'\].*usable with isinstance"):
        bus.declare("sale.closed", payload={"amount": int, "items": expected})

    assert bus.catalog() == (existing,)
    assert bus.emit_sync("sale.closed", items=[1]).ok  # not declared, so not checked


@pytest.mark.parametrize("description", [None, 42, b"paid"])
def test_declaring_a_non_str_description_is_a_type_error(bus: EventBus, description: Any) -> None:
    with pytest.raises(TypeError, match="description must be a str"):
        bus.declare("sale.closed", description=description)

    assert bus.catalog() == ()


@pytest.mark.parametrize("reentrant", [None, 1, "yes"])
def test_declaring_a_non_bool_reentrant_is_a_type_error(bus: EventBus, reentrant: Any) -> None:
    with pytest.raises(TypeError, match="reentrant must be a bool"):
        bus.declare("sale.closed", reentrant=reentrant)

    assert bus.catalog() == ()


def test_bad_declaration_leaves_existing_catalog_unchanged(bus: EventBus) -> None:
    spec = bus.declare("sale.closed", payload={"amount": int})

    with pytest.raises(TypeError):
        bus.declare("sale.opened", payload={"amount": "int"})

    assert bus.catalog() == (spec,)
    assert bus.emit_sync("sale.opened").ok  # not declared, so not checked


# ---------------------------------------------------------------- payload checks


@pytest.mark.parametrize("how", EMITTERS)
async def test_missing_payload_key_is_refused_before_any_handler_runs(
    sale_bus: EventBus, how: str
) -> None:
    ran: list[Event] = []
    sale_bus.on("sale.closed", ran.append)

    with pytest.raises(PayloadError, match=r"'amount'.*\bint\b.*got nothing"):
        await emit_with(sale_bus, how, "sale.closed", note=None)

    assert ran == []


@pytest.mark.parametrize("how", EMITTERS)
async def test_mistyped_payload_value_is_refused_before_any_handler_runs(
    sale_bus: EventBus, how: str
) -> None:
    ran: list[Event] = []
    sale_bus.on("sale.closed", ran.append)

    with pytest.raises(PayloadError, match=r"'amount'.*\bint\b.*\bstr\b"):
        await emit_with(sale_bus, how, "sale.closed", amount="12", note=None)

    assert ran == []


@pytest.mark.parametrize("how", EMITTERS)
async def test_payload_matching_its_declaration_is_emitted(sale_bus: EventBus, how: str) -> None:
    ran: list[Event] = []
    sale_bus.on("sale.closed", ran.append)

    report = await emit_with(sale_bus, how, "sale.closed", amount=12, note="cash")

    assert report.ok
    assert [event.payload for event in ran] == [{"amount": 12, "note": "cash"}]


async def test_payload_error_names_the_given_type_for_a_union(sale_bus: EventBus) -> None:
    with pytest.raises(PayloadError, match=r"'note'.*str \| None.*\bint\b"):
        await sale_bus.emit("sale.closed", amount=12, note=3)


@pytest.mark.parametrize("note", [None, "cash"])
async def test_union_type_accepts_each_of_its_members(sale_bus: EventBus, note: str | None) -> None:
    report = await sale_bus.emit("sale.closed", amount=12, note=note)

    assert report.event["note"] == note


async def test_missing_union_key_is_refused_even_if_none_is_allowed(sale_bus: EventBus) -> None:
    with pytest.raises(PayloadError, match=r"'note'.*got nothing"):
        await sale_bus.emit("sale.closed", amount=12)


async def test_instance_of_a_subclass_is_accepted(bus: EventBus) -> None:
    bus.declare("sale.closed", payload={"total": Money})
    total = Euros()

    report = await bus.emit("sale.closed", total=total)

    assert report.event["total"] is total


async def test_instance_of_a_base_class_is_refused(bus: EventBus) -> None:
    bus.declare("sale.closed", payload={"total": Euros})

    with pytest.raises(PayloadError, match=r"'total'.*Euros.*Money"):
        await bus.emit("sale.closed", total=Money())


async def test_extra_payload_keys_are_allowed(sale_bus: EventBus) -> None:
    report = await sale_bus.emit("sale.closed", amount=12, note=None, cashier="Léa")

    assert report.event.payload == {"amount": 12, "note": None, "cashier": "Léa"}


async def test_payload_error_is_a_type_error(sale_bus: EventBus) -> None:
    with pytest.raises(TypeError):
        await sale_bus.emit("sale.closed")


async def test_declared_event_without_payload_spec_accepts_any_payload(bus: EventBus) -> None:
    bus.declare("sale.closed", description="no payload rules")

    report = await bus.emit("sale.closed", anything=object())

    assert report.ok


@pytest.mark.parametrize("how", EMITTERS)
async def test_payload_refused_emission_is_not_recorded_nor_logged_as_emitted(
    sale_bus: EventBus, how: str
) -> None:
    with structlog.testing.capture_logs() as logs, sale_bus.record() as recorder:
        with pytest.raises(PayloadError):
            await emit_with(sale_bus, how, "sale.closed", amount="12", note=None)
        await sale_bus.drain()

    assert recorder.events == []
    assert [entry for entry in logs if entry["event"] == "eventbus.emitted"] == []


async def test_payload_refused_inside_a_handler_is_that_handlers_failure(
    sale_bus: EventBus,
) -> None:
    async def bad(event: Event) -> None:
        await sale_bus.emit("sale.closed", amount="12", note=None)

    sale_bus.on("trigger", bad)
    sale_bus.on("trigger", lambda event: "still runs")

    report = await sale_bus.emit("trigger")

    assert isinstance(report.errors[0].error, PayloadError)
    assert report.values == ("still runs",)


async def test_declaring_after_subscribing_applies_payload_checks_to_later_emissions(
    bus: EventBus,
) -> None:
    ran: list[Event] = []
    bus.on("sale.closed", ran.append)
    await bus.emit("sale.closed", amount="12")  # not declared yet: not checked

    bus.declare("sale.closed", payload={"amount": int})

    with pytest.raises(PayloadError, match="'amount'"):
        await bus.emit("sale.closed", amount="12")
    with pytest.raises(PayloadError, match="'amount'"):
        bus.emit_sync("sale.closed", amount="12")
    assert len(ran) == 1


# ---------------------------------------------------------------- strict mode


def _on(bus: EventBus, name: str) -> None:
    bus.on(name, lambda event: None)


def _on_decorator(bus: EventBus, name: str) -> None:
    bus.on(name)


def _once(bus: EventBus, name: str) -> None:
    bus.once(name, lambda event: None)


def _subscribed(bus: EventBus, name: str) -> None:
    with bus.subscribed(name, lambda event: None):
        pytest.fail("entered the block of an undeclared name")


SUBSCRIBERS: list[Callable[[EventBus, str], None]] = [_on, _on_decorator, _once, _subscribed]


@pytest.mark.parametrize("how", EMITTERS)
async def test_strict_bus_refuses_to_emit_an_undeclared_name_suggesting_the_closest(
    strict_bus: EventBus, how: str
) -> None:
    ran: list[Event] = []
    strict_bus.on("sale.*", ran.append)

    with strict_bus.record() as recorder, structlog.testing.capture_logs() as logs:
        with pytest.raises(UnknownEventError, match=r"did you mean 'sale\.closed'\?"):
            await emit_with(strict_bus, how, "sale.closd")
        await strict_bus.drain()

    assert ran == []
    assert recorder.events == []
    assert [entry for entry in logs if entry["event"] == "eventbus.emitted"] == []


@pytest.mark.parametrize("subscribe", SUBSCRIBERS)
def test_strict_bus_refuses_to_subscribe_to_an_undeclared_name_suggesting_the_closest(
    strict_bus: EventBus, subscribe: Callable[[EventBus, str], None]
) -> None:
    with pytest.raises(UnknownEventError, match=r"did you mean 'sale\.closed'\?"):
        subscribe(strict_bus, "sale.closd")

    assert strict_bus.listener_count() == 0
    assert strict_bus.topics() == ()


def test_unknown_event_error_suggests_the_closest_declared_name_first(
    strict_bus: EventBus,
) -> None:
    strict_bus.declare("sale.opened")

    with pytest.raises(UnknownEventError, match=r"did you mean 'sale\.closed'"):
        strict_bus.emit_sync("sale.closd")


def test_unknown_event_error_names_the_unknown_name(strict_bus: EventBus) -> None:
    with pytest.raises(UnknownEventError, match=r"'sale\.closd'"):
        strict_bus.emit_sync("sale.closd")


def test_unknown_event_error_is_a_lookup_error(strict_bus: EventBus) -> None:
    with pytest.raises(LookupError):
        strict_bus.emit_sync("nope")


@pytest.mark.parametrize("pattern", ["sale.*", "*"])
@pytest.mark.parametrize("subscribe", SUBSCRIBERS[:3])
def test_strict_bus_accepts_a_pattern_matching_a_declared_name(
    strict_bus: EventBus, subscribe: Callable[[EventBus, str], None], pattern: str
) -> None:
    subscribe(strict_bus, pattern)

    if subscribe is not _on_decorator:
        assert strict_bus.topics() == (pattern,)


@pytest.mark.parametrize("subscribe", SUBSCRIBERS)
def test_strict_bus_refuses_a_pattern_matching_no_declared_name(
    strict_bus: EventBus, subscribe: Callable[[EventBus, str], None]
) -> None:
    with pytest.raises(UnknownEventError, match=r"'nope\.\*'"):
        subscribe(strict_bus, "nope.*")

    assert strict_bus.topics() == ()


def test_strict_bus_refuses_a_pattern_matching_only_the_prefix_itself(
    strict_bus: EventBus,
) -> None:
    """``sale.closed.*`` matches names below ``sale.closed``, and none is declared."""
    with pytest.raises(UnknownEventError):
        strict_bus.on("sale.closed.*", lambda event: None)


def test_strict_bus_without_declarations_refuses_the_catch_all_pattern() -> None:
    bus = EventBus("strict", strict=True)

    with pytest.raises(UnknownEventError):
        bus.on("*", lambda event: None)


@pytest.mark.parametrize("how", EMITTERS)
async def test_strict_bus_emits_declared_names(strict_bus: EventBus, how: str) -> None:
    ran: list[Event] = []
    strict_bus.on("sale.closed", ran.append)
    strict_bus.on("sale.*", ran.append)
    with strict_bus.subscribed("sale.closed", lambda event: "scoped"):
        report = await emit_with(strict_bus, how, "sale.closed", amount=12)

    assert report.ok
    assert report.values == (None, None, "scoped")
    assert len(ran) == 2


async def test_strict_bus_accepts_names_declared_after_it_was_created(
    strict_bus: EventBus,
) -> None:
    with pytest.raises(UnknownEventError):
        await strict_bus.emit("stock.counted")

    strict_bus.declare("stock.counted")
    strict_bus.on("stock.counted", lambda event: "ok")

    assert (await strict_bus.emit("stock.counted")).values == ("ok",)


def test_strict_bus_with_no_close_name_lists_the_declared_ones(strict_bus: EventBus) -> None:
    with pytest.raises(UnknownEventError, match=r"member\.created"):
        strict_bus.emit_sync("zzz")


def test_strict_bus_introspection_never_raises_on_undeclared_names(strict_bus: EventBus) -> None:
    def handler(event: Event) -> None:
        pass

    assert strict_bus.off("nope", handler) is False
    assert strict_bus.off("nope.*", handler) is False
    assert strict_bus.listeners("nope") == ()
    assert strict_bus.listeners("nope.*") == ()
    assert strict_bus.listener_count("nope") == 0
    assert strict_bus.has_listeners("nope") is False
    assert strict_bus.has_listeners("nope.*") is False
    assert strict_bus.topics() == ()
    assert json.loads(json.dumps(strict_bus.describe())) == []
    assert strict_bus.clear("nope") == 0
    with strict_bus.record("nope") as recorder:
        pass
    assert recorder.events == []
    with strict_bus.muted("nope"), strict_bus.muted("nope.*"):
        pass


def test_strict_bus_introspection_sees_declared_subscriptions(strict_bus: EventBus) -> None:
    strict_bus.on("sale.*", lambda event: None)

    assert strict_bus.has_listeners("sale.closed") is True
    assert strict_bus.has_listeners("nope") is False
    assert strict_bus.listener_count("sale.closed") == 1


def test_non_strict_bus_emits_undeclared_names(bus: EventBus) -> None:
    bus.declare("sale.closed")
    bus.on("sale.closd", lambda event: "typo welcome")

    assert bus.emit_sync("sale.closd").values == ("typo welcome",)
