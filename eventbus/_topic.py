"""Typed events: a ``Topic[T]`` names an event and the type of its data.

A data type is read once into a shape (``shape_of``): its fields, which of
them ``isinstance`` can check, how to build the data from keyword fields and
how to read the fields back. ``resolve`` turns what ``emit``, ``emit_sync``,
``publish`` (and ``defer``) were given into a name and a payload; a typed
payload (``TypedPayload``) carries the data, so ``Event.data`` costs nothing
to untyped events. Emitting with a plain name never comes here.

Supported data types: dataclasses, ``TypedDict``s, pydantic ``BaseModel``
subclasses (pydantic is only looked at when it was already imported, i.e. by
the application that defined such a model) and ``Mapping[str, type]``.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import types
import typing
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, final, overload

import typing_extensions

from ._errors import PayloadError, safe_repr
from ._event import Event, TypedPayload
from ._names import check_name

if TYPE_CHECKING:
    from ._catalog import EventSpec

__all__ = ["Shape", "Topic", "TopicDecorator", "checked_mapping", "resolve", "shape_of"]

T = TypeVar("T")
R = TypeVar("R")

_NONE_TYPE: Final = type(None)


class TopicDecorator(Protocol[T]):
    """What ``bus.on(topic)`` returns: a decorator subscribing handlers of ``Event[T]``."""

    def __call__(self, handler: Callable[[Event[T]], R], /) -> Callable[[Event[T]], R]:
        """Subscribe ``handler``; return it unchanged."""
        ...


@final
class Topic(Generic[T]):
    """An event name bound to the type of its data: ``Topic("sale.closed", SaleClosed)``.

    Accepted wherever an event name is, and means its name; emitting through
    it builds and checks the data (``event.data``), and the type checker
    knows handlers receive an ``Event[T]``. Immutable, hashable by name and
    data type.
    """

    __slots__ = ("_key", "data_type", "description", "name", "reentrant", "shape")

    name: str
    """The event name."""
    data_type: Any
    """The data type: a dataclass, a ``TypedDict``, a pydantic model, or a
    read-only ``Mapping[str, type]``."""
    description: str
    """What the event means, as ``declare(topic)`` records it."""
    reentrant: bool
    """Whether the event may be emitted again inside its own chain."""
    shape: Shape
    """How data of this type is built, checked and read (internal)."""
    _key: tuple[str, object]

    @overload
    def __init__(
        self: Topic[Mapping[str, Any]],
        name: str,
        data_type: Mapping[str, type],
        *,
        description: str = "",
        reentrant: bool = False,
    ) -> None: ...
    @overload
    def __init__(
        self, name: str, data_type: type[T], *, description: str = "", reentrant: bool = False
    ) -> None: ...
    def __init__(
        self, name: str, data_type: object, *, description: str = "", reentrant: bool = False
    ) -> None:
        name = check_name(name)
        if not isinstance(description, str):
            raise TypeError(f"description must be a str, not {type(description).__name__}")
        if not isinstance(reentrant, bool):
            raise TypeError(f"reentrant must be a bool, not {type(reentrant).__name__}")
        shape = shape_of(data_type)
        setter = object.__setattr__
        setter(self, "name", name)
        setter(self, "data_type", shape.data_type)
        setter(self, "description", description)
        setter(self, "reentrant", reentrant)
        setter(self, "shape", shape)
        setter(self, "_key", (name, shape.key))

    def __setattr__(self, attribute: str, value: object) -> None:
        raise AttributeError(f"a Topic is immutable: cannot set {attribute!r}")

    def __delattr__(self, attribute: str) -> None:
        raise AttributeError(f"a Topic is immutable: cannot delete {attribute!r}")

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Topic):
            return NotImplemented
        return self._key == other._key

    def __repr__(self) -> str:
        return f"Topic({self.name!r}, {self.shape.type_name})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_topic, (self.name, self.data_type, self.description, self.reentrant))


def _make_topic(name: str, data_type: Any, description: str, reentrant: bool) -> Topic[Any]:
    return Topic(name, data_type, description=description, reentrant=reentrant)


# ---------------------------------------------------------------------- resolving


def resolve(
    name: object, data: object, fields: dict[str, Any], specs: Mapping[str, EventSpec]
) -> tuple[Any, dict[str, Any]]:
    """The name and payload of an emission given as ``(name_or_topic, data, **fields)``.

    A plain name comes back as it is, with its keyword payload (``data`` must
    be None); a topic gives its name and its data built or checked
    (``PayloadError`` naming every bad field). ``specs`` are the bus's
    declarations: a topic whose name is declared with another data type is a
    ``ValueError``.
    """
    if not isinstance(name, Topic):
        if data is not None:
            raise TypeError(
                f"emitting {safe_repr(name)} with a positional data argument: only a Topic "
                "takes one; give a plain name's payload as keyword arguments"
            )
        return name, fields
    spec = specs.get(name.name)
    if spec is not None:
        _check_declared(name, spec)
    if data is None:
        return name.name, name.shape.build(name.name, fields)
    if fields:
        raise TypeError(
            f"emitting {name!r}: give either an instance of its data type or keyword fields, "
            f"not both (got an instance and {', '.join(sorted(fields))})"
        )
    return name.name, name.shape.adopt(name.name, data)


def _check_declared(topic: Topic[Any], spec: EventSpec) -> None:
    """``ValueError`` if the bus declared the topic's name with another data type."""
    declared: object = spec.data_type if spec.data_type is not None else spec.payload
    if declared is None or declared is topic.data_type:
        return
    mappings = isinstance(declared, Mapping) and isinstance(topic.data_type, Mapping)
    if mappings and dict(declared) == dict(topic.data_type):  # type: ignore[call-overload]
        return
    shown = declared.__qualname__ if isinstance(declared, type) else safe_repr(declared)
    raise ValueError(
        f"{topic!r} does not match the declaration of {topic.name!r} on this bus "
        f"(declared data type: {shown})"
    )


# ---------------------------------------------------------------------- shapes


class Shape:
    """A data type read once: builds its data from fields, reads fields from its data."""

    __slots__ = ("_checks", "_lock", "data_type", "key", "type_name")

    def __init__(self, data_type: Any, key: object, type_name: str) -> None:
        self.data_type: Final = data_type
        self.key: Final = key
        """What a topic of this type is compared and hashed by."""
        self.type_name: Final = type_name
        self._checks: dict[str, tuple[type, ...]] | None = None
        self._lock: Final = threading.Lock()

    def build(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The payload of an emission given keyword fields (``PayloadError``
        when they do not fit)."""
        raise NotImplementedError

    def adopt(self, name: str, data: object) -> dict[str, Any]:
        """The payload of an emission given its data; ``TypeError`` for data of another type."""
        raise NotImplementedError

    def fit(self, name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload of an emission of a name declared with this type: typed
        data of this type as it is, else built from the payload's fields."""
        if type(payload) is TypedPayload and isinstance(payload.data, self.data_type):
            return payload
        return self.build(name, payload)

    # -- helpers

    def checks(self) -> dict[str, tuple[type, ...]]:
        """Field name -> the classes ``isinstance`` checks its value against
        (fields whose annotation is a plain class or a union of them)."""
        checks = self._checks
        if checks is None:
            with self._lock:
                checks = self._checks = self._resolve_checks()
        return checks

    def _resolve_checks(self) -> dict[str, tuple[type, ...]]:
        return {}

    def _hints(self, *, extras: bool = False) -> dict[str, Any]:
        """The data type's annotations, string ones resolved."""
        try:
            return typing.get_type_hints(self.data_type, include_extras=extras)
        except Exception as error:
            raise TypeError(
                f"cannot resolve the annotations of {self.type_name} to check its fields: "
                f"{type(error).__name__}: {error}"
            ) from None

    def _mistyped(self, fields: Mapping[str, Any]) -> list[str]:
        problems = []
        for key, classes in self.checks().items():
            if key in fields and not isinstance(fields[key], classes):
                problems.append(
                    f"field {key!r} expected {_names_of(classes)}, got {type(fields[key]).__name__}"
                )
        return problems

    def _refuse(self, name: str, problems: list[str]) -> PayloadError:
        return PayloadError(f"event {name!r} ({self.type_name}): " + "; ".join(problems))

    def _wrong_type(self, name: str, data: object) -> TypeError:
        return TypeError(
            f"emitting {name!r}: expected an instance of {self.type_name}, "
            f"not {type(data).__qualname__}"
        )


def _checkable(hint: Any) -> tuple[type, ...] | None:
    """The classes ``isinstance`` can check ``hint`` with, or None (generics, Any, Literal...)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [_plain(member) for member in typing.get_args(hint)]
        return None if None in members else tuple(m for m in members if m is not None)
    plain = _plain(hint)
    return None if plain is None else (plain,)


def _plain(hint: Any) -> type | None:
    if hint is None or hint is _NONE_TYPE:
        return _NONE_TYPE
    if not isinstance(hint, type) or isinstance(hint, types.GenericAlias) or hint is Any:
        return None
    try:
        isinstance(None, hint)
    except TypeError:  # a TypedDict, a non-runtime Protocol...
        return None
    return hint


def _names_of(classes: tuple[type, ...]) -> str:
    return " | ".join("None" if c is _NONE_TYPE else c.__qualname__ for c in classes)


def _unknown(fields: Iterable[str], known: Iterable[str]) -> list[str]:
    allowed = set(known)
    return [f"unknown field {safe_repr(key)}" for key in fields if key not in allowed]


@final
class _DataclassShape(Shape):
    __slots__ = ("_init", "_name_set", "_names", "_required")

    def __init__(self, data_type: type) -> None:
        super().__init__(data_type, data_type, data_type.__qualname__)
        fields = dataclasses.fields(data_type)
        self._names: Final = tuple(f.name for f in fields)
        self._name_set: Final = frozenset(self._names)
        self._init: Final = frozenset(f.name for f in fields if f.init)
        self._required: Final = frozenset(
            f.name
            for f in fields
            if f.init
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )

    def _resolve_checks(self) -> dict[str, tuple[type, ...]]:
        hints = self._hints()
        checks = {}
        for key in self._names:
            classes = _checkable(hints.get(key, Any))
            if classes is not None:
                checks[key] = classes
        return checks

    def build(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        keys = fields.keys()
        if not keys <= self._init or not self._required <= keys:
            missing = [key for key in self._names if key in self._required and key not in keys]
            problems = _unknown(fields, self._init) + [f"field {k!r} is missing" for k in missing]
            raise self._refuse(name, problems + self._mistyped(fields))
        try:
            data = self.data_type(**fields)
        except Exception as error:
            raise self._refuse(
                name, [f"{self.type_name}(...) raised {type(error).__name__}: {error}"]
            ) from None
        payload = _typed_payload(data, self._names, self._name_set)
        for key, classes in self.checks().items():
            if not isinstance(payload[key], classes):
                raise self._refuse(name, self._mistyped(payload))
        return payload

    def adopt(self, name: str, data: object) -> dict[str, Any]:
        if not isinstance(data, self.data_type):
            raise self._wrong_type(name, data)
        return _typed_payload(data, self._names, self._name_set)


def _typed_payload(data: object, names: tuple[str, ...], name_set: frozenset[str]) -> TypedPayload:
    """The fields of ``data`` by name, with ``data`` itself."""
    fields = getattr(data, "__dict__", None)
    if fields is not None and fields.keys() == name_set:  # a copy at C speed
        payload = TypedPayload(fields)
    else:  # slots, or attributes besides the fields (a cached_property...)
        payload = TypedPayload({key: getattr(data, key) for key in names})
    payload.data = data
    return payload


@final
class _PydanticShape(Shape):
    __slots__ = ("_allowed", "_extra", "_name_set", "_names")

    def __init__(self, data_type: Any) -> None:
        super().__init__(data_type, data_type, data_type.__qualname__)
        model_fields = data_type.model_fields
        self._names: Final = tuple(model_fields)
        self._name_set: Final = frozenset(self._names)
        aliases = {info.alias for info in model_fields.values() if info.alias}
        self._allowed: Final = frozenset(self._names) | aliases
        self._extra: Final = data_type.model_config.get("extra") == "allow"

    def build(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        unknown = [] if self._extra else _unknown(fields, self._allowed)
        try:
            data = self.data_type.model_validate(dict(fields))
        except Exception as error:
            problems = unknown + _pydantic_problems(error)
            raise self._refuse(name, problems) from None
        if unknown:
            raise self._refuse(name, unknown)
        return _typed_payload(data, self._names, self._name_set)

    def adopt(self, name: str, data: object) -> dict[str, Any]:
        if not isinstance(data, self.data_type):
            raise self._wrong_type(name, data)
        return _typed_payload(data, self._names, self._name_set)


def _pydantic_problems(error: Exception) -> list[str]:
    """One phrase per error of a pydantic ``ValidationError`` (never the input value)."""
    errors = getattr(error, "errors", None)
    if errors is None:
        return [f"{type(error).__name__}: {error}"]
    problems = []
    for item in errors():
        where = ".".join(str(part) for part in item.get("loc", ())) or "(model)"
        message = item.get("msg", "invalid")
        problems.append(
            f"field {where!r} is missing"
            if item.get("type") == "missing"
            else f"field {where!r}: {message}"
        )
    return problems


class _MappingShape(Shape):
    """A ``TypedDict`` or a ``Mapping[str, type]``: the data is the payload mapping."""

    __slots__ = ("_keys", "_types")

    def __init__(
        self, data_type: Any, key: object, type_name: str, types_: Mapping[str, Any] | None
    ) -> None:
        super().__init__(data_type, key, type_name)
        self._types: Final = types_
        """A mapping data type's key -> type; None for a TypedDict (read from its annotations)."""
        self._keys: tuple[tuple[str, ...], frozenset[str] | None] | None = None

    def keys(self) -> tuple[tuple[str, ...], frozenset[str] | None]:
        """(required keys, every allowed key or None when any other key is allowed)."""
        keys = self._keys
        if keys is None:
            if self._types is not None:
                keys = (tuple(self._types), None)
            else:
                keys = _typeddict_keys(self.data_type, self._hints(extras=True))
            self._keys = keys
        return keys

    def _resolve_checks(self) -> dict[str, tuple[type, ...]]:
        hints = self._types if self._types is not None else self._hints()
        checks = {}
        for key, hint in hints.items():
            classes = _checkable(hint)
            if classes is not None:
                checks[key] = classes
        return checks

    def build(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        required, allowed = self.keys()
        problems = [] if allowed is None else _unknown(fields, allowed)
        problems += [f"field {key!r} is missing" for key in required if key not in fields]
        problems += self._mistyped(fields)
        if problems:
            raise self._refuse(name, problems)
        return dict(fields)

    def adopt(self, name: str, data: object) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise self._wrong_type(name, data)
        return self.build(name, data)

    def fit(self, name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self.build(name, payload)


def _typeddict_keys(
    data_type: Any, hints: Mapping[str, Any]
) -> tuple[tuple[str, ...], frozenset[str]]:
    """A TypedDict's required and allowed keys. ``Required``/``NotRequired`` in
    string annotations are read from the resolved hints: Python 3.11 cannot
    see them in ``__required_keys__``."""
    required = set(data_type.__required_keys__)
    for key, hint in hints.items():
        origin = typing.get_origin(hint)
        if origin in _NOT_REQUIRED:
            required.discard(key)
        elif origin in _REQUIRED:
            required.add(key)
    allowed = frozenset(required) | data_type.__optional_keys__ | frozenset(hints)
    return tuple(sorted(required)), allowed


_REQUIRED: Final = {typing.Required, typing_extensions.Required}
_NOT_REQUIRED: Final = {typing.NotRequired, typing_extensions.NotRequired}


_shapes: weakref.WeakKeyDictionary[type, Shape] = weakref.WeakKeyDictionary()
_shapes_lock: Final = threading.Lock()


def shape_of(data_type: object) -> Shape:
    """The shape of a supported data type; ``TypeError`` for anything else."""
    if isinstance(data_type, type):
        with _shapes_lock:
            shape = _shapes.get(data_type)
            if shape is None:
                shape = _shapes[data_type] = _class_shape(data_type)
        return shape
    if isinstance(data_type, Mapping):
        frozen = types.MappingProxyType(dict(checked_mapping(data_type)))
        items = frozenset(frozen.items())
        return _MappingShape(frozen, items, f"{dict(frozen)!r}", frozen)
    raise _unsupported(data_type)


def _class_shape(data_type: type) -> Shape:
    if dataclasses.is_dataclass(data_type):
        return _DataclassShape(data_type)
    if _is_typeddict(data_type):
        return _MappingShape(data_type, data_type, data_type.__qualname__, None)
    pydantic = sys.modules.get("pydantic")  # never imported here: a model's module did
    if pydantic is not None and issubclass(data_type, pydantic.BaseModel):
        if not hasattr(data_type, "model_validate"):
            raise TypeError(f"{data_type.__qualname__}: typed events need pydantic 2 models")
        return _PydanticShape(data_type)
    raise _unsupported(data_type)


def _is_typeddict(data_type: type) -> bool:
    return issubclass(data_type, dict) and hasattr(data_type, "__required_keys__")


def checked_mapping(data_type: Mapping[Any, Any]) -> Mapping[str, Any]:
    """``data_type`` if it maps ``str`` keys to types usable with ``isinstance``
    (a ``Mapping[str, type]`` data type or ``declare`` payload), else TypeError."""
    for key, expected in data_type.items():
        if not isinstance(key, str):
            raise TypeError(f"payload keys must be str, not {type(key).__name__}: {safe_repr(key)}")
        try:
            isinstance(None, expected)
        except TypeError:
            raise TypeError(
                f"payload[{safe_repr(key)}] must be a type usable with isinstance, "
                f"not {safe_repr(expected)}"
            ) from None
    return data_type


def _unsupported(data_type: object) -> TypeError:
    shown = data_type.__qualname__ if isinstance(data_type, type) else safe_repr(data_type)
    return TypeError(
        "a data type must be a dataclass, a TypedDict, a pydantic BaseModel subclass or a "
        f"mapping of field name to type, not {shown}"
    )
