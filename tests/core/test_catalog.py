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


class TestDeclare:
    def test_declare_returns_spec(self, bus: EventBus) -> None:
        """Declare returns a spec with the given fields."""
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

    def test_declare_defaults(self, bus: EventBus) -> None:
        """Declare defaults to no description no payload not reentrant."""
        spec = bus.declare("sale.closed")

        assert (spec.name, spec.description, spec.payload, spec.reentrant) == (
            "sale.closed",
            "",
            None,
            False,
        )

    def test_payload_spec_read_only(self, bus: EventBus) -> None:
        """Declared payload spec is read-only."""
        spec = bus.declare("sale.closed", payload={"amount": int})

        with pytest.raises(TypeError):
            spec.payload["amount"] = str  # type: ignore[index]
        assert spec.payload == {"amount": int}

    def test_payload_spec_copied(self, bus: EventBus) -> None:
        """Declared payload spec is copied from the callers dict."""
        given = {"amount": int}
        spec = bus.declare("sale.closed", payload=given)

        given["extra"] = str

        assert dict(spec.payload or {}) == {"amount": int}

    def test_spec_read_only(self, bus: EventBus) -> None:
        """Spec is read-only."""
        spec = bus.declare("sale.closed")

        with pytest.raises(AttributeError):
            spec.name = "other"  # type: ignore[misc]
        assert spec.name == "sale.closed"

    def test_spec_hashable(self, bus: EventBus) -> None:
        """Spec with a payload is hashable and equal specs hash equal.

        Regression: hashing an EventSpec with a payload raised TypeError (mappingproxy).
        """
        spec = bus.declare("sale.closed", description="paid", payload={"amount": int})
        twin = EventBus("other").declare("sale.closed", description="paid", payload={"amount": int})

        assert spec is not twin
        assert spec == twin
        assert hash(spec) == hash(twin)
        assert {spec, twin} == {spec}

    def test_catalog_starts_empty(self, bus: EventBus) -> None:
        """Catalog is empty before any declaration."""
        assert bus.catalog() == ()

    def test_catalog_sorted(self, bus: EventBus) -> None:
        """Catalog is a tuple of specs sorted by name."""
        b = bus.declare("b")
        a_x = bus.declare("a.x")
        a = bus.declare("a")

        catalog = bus.catalog()

        assert isinstance(catalog, tuple)
        assert catalog == (a, a_x, b)

    def test_catalog_per_bus(self, bus: EventBus) -> None:
        """Catalog is per bus."""
        bus.declare("sale.closed")

        assert EventBus("other").catalog() == ()

    def test_redeclare_same(self, bus: EventBus) -> None:
        """Redeclaring the same spec returns the existing one."""
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
    def test_redeclare_differently(self, bus: EventBus, changes: dict[str, Any]) -> None:
        """Redeclaring differently is a ValueError."""
        original = {"description": "paid", "payload": {"amount": int}, "reentrant": False}
        first = bus.declare("sale.closed", **original)

        with pytest.raises(ValueError, match=r"sale\.closed.*already declared"):
            bus.declare("sale.closed", **{**original, **changes})

        assert bus.catalog() == (first,)


# ---------------------------------------------------------------- declare validation


class TestDeclareValidation:
    @pytest.mark.parametrize("name", ["sale.*", "*"])
    def test_pattern(self, bus: EventBus, name: str) -> None:
        """Declaring a pattern is a ValueError."""
        with pytest.raises(ValueError, match=re.escape(repr(name))):
            bus.declare(name)

        assert bus.catalog() == ()

    @pytest.mark.parametrize("name", ["", "sale..closed", "sale closed", "vente.clôturée"])
    def test_invalid_name(self, bus: EventBus, name: str) -> None:
        """Declaring an invalid name is a ValueError."""
        with pytest.raises(ValueError, match="invalid event name"):
            bus.declare(name)

        assert bus.catalog() == ()

    def test_non_str_name(self, bus: EventBus) -> None:
        """Declaring a non-str name is a TypeError."""
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
    def test_bad_payload_spec(self, bus: EventBus, payload: Any, message: str) -> None:
        """Declaring a bad payload spec is a TypeError."""
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
    def test_unusable_type(self, bus: EventBus, expected: Any) -> None:
        """Declaring a payload type isinstance cannot use is a type error.

        Regression: declare accepted a union of parameterized generics; every emit then failed.
        """
        existing = bus.declare("sale.opened", payload={"till": str})

        with pytest.raises(TypeError, match=r"payload\['items'\].*usable with isinstance"):
            bus.declare("sale.closed", payload={"amount": int, "items": expected})

        assert bus.catalog() == (existing,)
        assert bus.emit_sync("sale.closed", items=[1]).ok  # not declared, so not checked

    @pytest.mark.parametrize("description", [None, 42, b"paid"])
    def test_bad_description(self, bus: EventBus, description: Any) -> None:
        """Declaring a non-str description is a TypeError."""
        with pytest.raises(TypeError, match="description must be a str"):
            bus.declare("sale.closed", description=description)

        assert bus.catalog() == ()

    @pytest.mark.parametrize("reentrant", [None, 1, "yes"])
    def test_bad_reentrant(self, bus: EventBus, reentrant: Any) -> None:
        """Declaring a non-bool reentrant is a TypeError."""
        with pytest.raises(TypeError, match="reentrant must be a bool"):
            bus.declare("sale.closed", reentrant=reentrant)

        assert bus.catalog() == ()

    def test_bad_declare_keeps_catalog(self, bus: EventBus) -> None:
        """Bad declaration leaves existing catalog unchanged."""
        spec = bus.declare("sale.closed", payload={"amount": int})

        with pytest.raises(TypeError):
            bus.declare("sale.opened", payload={"amount": "int"})

        assert bus.catalog() == (spec,)
        assert bus.emit_sync("sale.opened").ok  # not declared, so not checked


# ---------------------------------------------------------------- payload checks


class TestPayloadChecks:
    @pytest.mark.parametrize("how", EMITTERS)
    async def test_missing_key_refused(self, sale_bus: EventBus, how: str) -> None:
        """Missing payload key is refused before any handler runs."""
        ran: list[Event] = []
        sale_bus.on("sale.closed", ran.append)

        with pytest.raises(PayloadError, match=r"'amount'.*\bint\b.*got nothing"):
            await emit_with(sale_bus, how, "sale.closed", note=None)

        assert ran == []

    @pytest.mark.parametrize("how", EMITTERS)
    async def test_mistyped_value_refused(self, sale_bus: EventBus, how: str) -> None:
        """Mistyped payload value is refused before any handler runs."""
        ran: list[Event] = []
        sale_bus.on("sale.closed", ran.append)

        with pytest.raises(PayloadError, match=r"'amount'.*\bint\b.*\bstr\b"):
            await emit_with(sale_bus, how, "sale.closed", amount="12", note=None)

        assert ran == []

    @pytest.mark.parametrize("how", EMITTERS)
    async def test_matching_payload_emitted(self, sale_bus: EventBus, how: str) -> None:
        """Payload matching its declaration is emitted."""
        ran: list[Event] = []
        sale_bus.on("sale.closed", ran.append)

        report = await emit_with(sale_bus, how, "sale.closed", amount=12, note="cash")

        assert report.ok
        assert [event.payload for event in ran] == [{"amount": 12, "note": "cash"}]

    async def test_union_error_names_type(self, sale_bus: EventBus) -> None:
        """``payload_error`` names the given type for a union."""
        with pytest.raises(PayloadError, match=r"'note'.*str \| None.*\bint\b"):
            await sale_bus.emit("sale.closed", amount=12, note=3)

    @pytest.mark.parametrize("note", [None, "cash"])
    async def test_union_accepts_members(self, sale_bus: EventBus, note: str | None) -> None:
        """Union type accepts each of its members."""
        report = await sale_bus.emit("sale.closed", amount=12, note=note)

        assert report.event["note"] == note

    async def test_missing_optional_key(self, sale_bus: EventBus) -> None:
        """Missing union key is refused even if none is allowed."""
        with pytest.raises(PayloadError, match=r"'note'.*got nothing"):
            await sale_bus.emit("sale.closed", amount=12)

    async def test_subclass_accepted(self, bus: EventBus) -> None:
        """Instance of a subclass is accepted."""
        bus.declare("sale.closed", payload={"total": Money})
        total = Euros()

        report = await bus.emit("sale.closed", total=total)

        assert report.event["total"] is total

    async def test_base_class_refused(self, bus: EventBus) -> None:
        """Instance of a base class is refused."""
        bus.declare("sale.closed", payload={"total": Euros})

        with pytest.raises(PayloadError, match=r"'total'.*Euros.*Money"):
            await bus.emit("sale.closed", total=Money())

    async def test_extra_keys_allowed(self, sale_bus: EventBus) -> None:
        """Extra payload keys are allowed."""
        report = await sale_bus.emit("sale.closed", amount=12, note=None, cashier="Léa")

        assert report.event.payload == {"amount": 12, "note": None, "cashier": "Léa"}

    async def test_payload_error_type(self, sale_bus: EventBus) -> None:
        """PayloadError is a TypeError."""
        with pytest.raises(TypeError):
            await sale_bus.emit("sale.closed")

    async def test_no_spec_any_payload(self, bus: EventBus) -> None:
        """Declared event without payload spec accepts any payload."""
        bus.declare("sale.closed", description="no payload rules")

        report = await bus.emit("sale.closed", anything=object())

        assert report.ok

    @pytest.mark.parametrize("how", EMITTERS)
    async def test_refusal_not_recorded(self, sale_bus: EventBus, how: str) -> None:
        """Payload refused emission is not recorded nor logged as emitted."""
        with structlog.testing.capture_logs() as logs, sale_bus.record() as recorder:
            with pytest.raises(PayloadError):
                await emit_with(sale_bus, how, "sale.closed", amount="12", note=None)
            await sale_bus.drain()

        assert recorder.events == []
        assert [entry for entry in logs if entry["event"] == "eventbus.emitted"] == []

    async def test_refusal_in_handler(self, sale_bus: EventBus) -> None:
        """Payload refused inside a handler is that handlers failure."""

        async def bad(event: Event) -> None:
            await sale_bus.emit("sale.closed", amount="12", note=None)

        sale_bus.on("trigger", bad)
        sale_bus.on("trigger", lambda event: "still runs")

        report = await sale_bus.emit("trigger")

        assert isinstance(report.errors[0].error, PayloadError)
        assert report.values == ("still runs",)

    async def test_declare_after_subscribe(self, bus: EventBus) -> None:
        """Declaring after subscribing applies payload checks to later emissions."""
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


class TestStrict:
    @pytest.mark.parametrize("how", EMITTERS)
    async def test_emit_undeclared(self, strict_bus: EventBus, how: str) -> None:
        """Strict bus refuses to emit an undeclared name suggesting the closest."""
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
    def test_on_undeclared(
        self, strict_bus: EventBus, subscribe: Callable[[EventBus, str], None]
    ) -> None:
        """Strict bus refuses to subscribe to an undeclared name suggesting the closest."""
        with pytest.raises(UnknownEventError, match=r"did you mean 'sale\.closed'\?"):
            subscribe(strict_bus, "sale.closd")

        assert strict_bus.listener_count() == 0
        assert strict_bus.topics() == ()

    def test_unknown_closest_first(self, strict_bus: EventBus) -> None:
        """UnknownEventError suggests the closest declared name first."""
        strict_bus.declare("sale.opened")

        with pytest.raises(UnknownEventError, match=r"did you mean 'sale\.closed'"):
            strict_bus.emit_sync("sale.closd")

    def test_unknown_names_it(self, strict_bus: EventBus) -> None:
        """UnknownEventError names the unknown name."""
        with pytest.raises(UnknownEventError, match=r"'sale\.closd'"):
            strict_bus.emit_sync("sale.closd")

    def test_unknown_is_lookup_error(self, strict_bus: EventBus) -> None:
        """UnknownEventError is a LookupError."""
        with pytest.raises(LookupError):
            strict_bus.emit_sync("nope")

    @pytest.mark.parametrize("pattern", ["sale.*", "*"])
    @pytest.mark.parametrize("subscribe", SUBSCRIBERS[:3])
    def test_pattern_matching(
        self, strict_bus: EventBus, subscribe: Callable[[EventBus, str], None], pattern: str
    ) -> None:
        """Strict bus accepts a pattern matching a declared name."""
        subscribe(strict_bus, pattern)

        if subscribe is not _on_decorator:
            assert strict_bus.topics() == (pattern,)

    @pytest.mark.parametrize("subscribe", SUBSCRIBERS)
    def test_pattern_no_match(
        self, strict_bus: EventBus, subscribe: Callable[[EventBus, str], None]
    ) -> None:
        """Strict bus refuses a pattern matching no declared name."""
        with pytest.raises(UnknownEventError, match=r"'nope\.\*'"):
            subscribe(strict_bus, "nope.*")

        assert strict_bus.topics() == ()

    def test_pattern_prefix_only(self, strict_bus: EventBus) -> None:
        """``sale.closed.*`` matches names below ``sale.closed``, and none is declared."""
        with pytest.raises(UnknownEventError):
            strict_bus.on("sale.closed.*", lambda event: None)

    def test_empty_catch_all(self) -> None:
        """Strict bus without declarations refuses the catch all pattern."""
        bus = EventBus("strict", strict=True)

        with pytest.raises(UnknownEventError):
            bus.on("*", lambda event: None)

    @pytest.mark.parametrize("how", EMITTERS)
    async def test_emits_declared(self, strict_bus: EventBus, how: str) -> None:
        """Strict bus emits declared names."""
        ran: list[Event] = []
        strict_bus.on("sale.closed", ran.append)
        strict_bus.on("sale.*", ran.append)
        with strict_bus.subscribed("sale.closed", lambda event: "scoped"):
            report = await emit_with(strict_bus, how, "sale.closed", amount=12)

        assert report.ok
        assert report.values == (None, None, "scoped")
        assert len(ran) == 2

    async def test_later_declaration(self, strict_bus: EventBus) -> None:
        """Strict bus accepts names declared after it was created."""
        with pytest.raises(UnknownEventError):
            await strict_bus.emit("stock.counted")

        strict_bus.declare("stock.counted")
        strict_bus.on("stock.counted", lambda event: "ok")

        assert (await strict_bus.emit("stock.counted")).values == ("ok",)

    def test_lists_declared(self, strict_bus: EventBus) -> None:
        """Strict bus with no close name lists the declared ones."""
        with pytest.raises(UnknownEventError, match=r"member\.created"):
            strict_bus.emit_sync("zzz")

    def test_introspection_quiet(self, strict_bus: EventBus) -> None:
        """Strict bus introspection never raises on undeclared names."""

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

    def test_introspection_sees(self, strict_bus: EventBus) -> None:
        """Strict bus introspection sees declared subscriptions."""
        strict_bus.on("sale.*", lambda event: None)

        assert strict_bus.has_listeners("sale.closed") is True
        assert strict_bus.has_listeners("nope") is False
        assert strict_bus.listener_count("sale.closed") == 1

    def test_non_strict_undeclared(self, bus: EventBus) -> None:
        """Non-strict bus emits undeclared names."""
        bus.declare("sale.closed")
        bus.on("sale.closd", lambda event: "typo welcome")

        assert bus.emit_sync("sale.closd").values == ("typo welcome",)
