"""The immutable ``Event`` every handler receives, and its cheap unique ids.

An ``Event`` is a tuple underneath: building one is a single C call, which
matters because every emission builds one (a slotted class with a frozen
``__setattr__`` costs several times more). The tuple side is kept out of
sight: fields are read by name, ``event["key"]`` reads the payload, and
iterating it (as JSON encoders do) yields its log rendering, never a payload
value.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections import _tuplegetter  # type: ignore[attr-defined]  # namedtuple's field reader
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Generic, Self, final, overload

from typing_extensions import TypeVar

from ._errors import safe_repr
from ._names import check_name

if TYPE_CHECKING:
    from ._topic import Topic

__all__ = [
    "DataT_co",
    "Event",
    "TypedPayload",
    "format_id",
    "new_event",
    "next_serial",
    "with_payload",
]

DataT_co = TypeVar("DataT_co", covariant=True, default=Mapping[str, Any])
"""The type of ``Event.data``: a topic's data type; a mapping for a plain name."""
T = TypeVar("T")


def _new_prefix() -> str:
    return secrets.token_hex(8)


next_serial: Final = itertools.count(1).__next__
"""The per-process counter of an event id (atomic: a C-level iterator)."""

_prefixes: list[tuple[int, str]] = [(0, _new_prefix())]
"""(first serial, prefix) pairs: a forked child gets a new prefix for the events
it makes from then on, while events made before the fork keep their id."""


def _new_prefix_after_fork() -> None:
    _prefixes.append((next_serial(), _new_prefix()))


os.register_at_fork(after_in_child=_new_prefix_after_fork)


def format_id(serial: int) -> str:
    """The id of the event with this serial: ``<16 hex prefix>-<hex serial>``."""
    for first, prefix in reversed(_prefixes):
        if serial >= first:
            return f"{prefix}-{serial:x}"
    raise AssertionError("unreachable: the first prefix starts at serial 0")


@final
class TypedPayload(dict[str, Any]):
    """The payload of a typed emission: its fields by name, and in ``data`` the
    instance they were read from (``Event.data``). Untyped events keep a plain dict."""

    __slots__ = ("data",)

    data: Any
    """The instance the fields were read from (set right after building the dict)."""


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
new_event: Final = tuple.__new__
"""``new_event(Event, (name, payload, source, serial, parent_id, depth, timestamp))``:
the emit path's constructor, without the public one's checks."""


@final
class Event(tuple[Any, ...], Generic[DataT_co]):
    """One emission of a named event: what every handler and predicate receives.

    Immutable. ``event["key"]`` reads ``event.payload["key"]``. Built directly,
    ``Event(name, payload, source=...)`` is a top-level event (fresh id, depth 0,
    no parent), which lets a handler be unit-tested without a bus; its payload
    keys must be ``str`` (anything else is a ``TypeError`` naming the key).
    ``Event(topic, data)`` builds a typed one (``Event[T]``, ``event.data`` is ``data``).
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def name(self) -> str:
            """The concrete event name."""

        @property
        def source(self) -> str | None:
            """Who emitted it (``emit(..., source="caisse")``)."""

        @property
        def parent_id(self) -> str | None:
            """Id of the event whose handler emitted this one, else None."""

        @property
        def depth(self) -> int:
            """0 for a top-level emission, the parent's depth + 1 when nested."""

        @property
        def timestamp(self) -> float:
            """``time.time()`` at emission."""

    else:
        name = _tuplegetter(0, "The concrete event name.")
        source = _tuplegetter(2, "Who emitted it (`emit(..., source=...)`).")
        parent_id = _tuplegetter(4, "Id of the event whose handler emitted this one, else None.")
        depth = _tuplegetter(5, "0 for a top-level emission, the parent's depth + 1 when nested.")
        timestamp = _tuplegetter(6, "`time.time()` at emission.")

    @overload
    def __new__(
        cls, name: str, payload: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> Event[Mapping[str, Any]]: ...
    @overload
    def __new__(cls, name: Topic[T], payload: T, *, source: str | None = None) -> Event[T]: ...
    def __new__(
        cls,
        name: str | Topic[Any],
        payload: object = None,
        *,
        source: str | None = None,
    ) -> Event[Any]:
        if not isinstance(name, str):
            return _typed_event(name, payload, source)
        check_name(name)
        if payload is not None and not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping or None, not {type(payload).__name__}")
        if source is not None and not isinstance(source, str):
            raise TypeError(f"source must be a str or None, not {type(source).__name__}")
        values = dict(payload or {})
        bad = [key for key in values if not isinstance(key, str)]
        if bad:
            shown = ", ".join(f"{safe_repr(key)} ({type(key).__name__})" for key in bad)
            raise TypeError(f"payload keys must be str; not: {shown}")
        fields = (name, values, source, next_serial(), None, 0, time.time())
        return new_event(cls, fields)

    @property
    def id(self) -> str:
        """Unique across processes and restarts: a random per-process prefix plus a counter."""
        serial = tuple.__getitem__(self, 3)
        return format_id(serial) if isinstance(serial, int) else str(serial)

    @property
    def payload(self) -> Mapping[str, Any]:
        """Read-only view of the keyword arguments given to ``emit`` (of a typed
        event: its data's fields by name)."""
        payload = tuple.__getitem__(self, 1)
        return MappingProxyType(payload) if payload else _EMPTY

    @property
    def data(self) -> DataT_co:
        """The emitted data: an instance of the topic's data type (dataclass,
        pydantic model), else the read-only payload mapping (``TypedDict``,
        ``Mapping[str, type]``, plain names)."""
        payload = tuple.__getitem__(self, 1)
        if type(payload) is TypedPayload:
            return payload.data  # type: ignore[no-any-return]
        return self.payload  # type: ignore[return-value]

    def __getitem__(self, key: str) -> Any:  # type: ignore[override]
        try:
            return tuple.__getitem__(self, 1)[key]
        except KeyError:
            raise KeyError(self._missing(key)) from None

    def _missing(self, key: object) -> str:
        keys = ", ".join(sorted(safe_repr(known) for known in tuple.__getitem__(self, 1)))
        return (
            f"event {self.name!r} has no payload key {safe_repr(key)} (its keys: {keys or 'none'})"
        )

    def __contains__(self, key: object) -> bool:
        return key in tuple.__getitem__(self, 1)

    def __iter__(self) -> Iterator[Any]:
        """What a JSON encoder shows of an event: name, payload keys, source, id,
        parent id, depth, timestamp; never a payload value.

        ``json.dumps`` (and structlog's ``JSONRenderer``, which uses it) writes
        a tuple subclass as an array of what iterating it yields, without
        asking ``default``: this keeps an ``Event`` in a log entry renderable
        and free of personal data. Read fields by name, not by position.
        """
        return iter(
            (
                self.name,
                sorted(tuple.__getitem__(self, 1)),
                self.source,
                self.id,
                self.parent_id,
                self.depth,
                self.timestamp,
            )
        )

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        """Events are equal when their ids are: a pickled copy equals its original."""
        if self is other:
            return True
        if type(other) is not Event:
            return NotImplemented
        return self.id == other.id

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __reduce__(self) -> tuple[Any, ...]:
        fields = list(tuple.__iter__(self))
        fields[3] = self.id  # the prefix of the process that made it
        return (new_event, (Event, tuple(fields)))

    def __repr__(self) -> str:
        # Keys only: a repr ends up in logs and tracebacks, a payload may hold personal data.
        return (
            f"Event(name={self.name!r}, payload_keys={sorted(self.payload)!r}, "
            f"source={self.source!r}, id={self.id!r}, parent_id={self.parent_id!r}, "
            f"depth={self.depth})"
        )

    def __bool__(self) -> bool:
        return True

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: object) -> Self:
        return self

    # Not a sequence: no ordering, no length, no concatenation.
    def __lt__(self, other: object) -> bool:
        return NotImplemented

    def __le__(self, other: object) -> bool:
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        return NotImplemented

    def __len__(self) -> int:
        raise TypeError("an Event has no length; use len(event.payload)")

    def __add__(self, other: object) -> Any:
        return NotImplemented

    def __mul__(self, other: object) -> Any:
        return NotImplemented

    def __rmul__(self, other: object) -> Any:
        return NotImplemented


def _typed_event(topic: object, data: object, source: object) -> Event[Any]:
    """``Event(topic, data)``: a typed top-level event, its data checked as ``emit`` would."""
    from ._topic import Topic

    if not isinstance(topic, Topic):
        check_name(topic)  # raises: neither a name nor a topic
        raise AssertionError("unreachable: check_name accepts only a str")
    if source is not None and not isinstance(source, str):
        raise TypeError(f"source must be a str or None, not {type(source).__name__}")
    if data is None:
        raise TypeError(f"Event({topic.name!r} topic, data) needs the data: an instance of {topic}")
    payload = topic.shape.adopt(topic.name, data)
    return new_event(Event, (topic.name, payload, source, next_serial(), None, 0, time.time()))


def with_payload(event: Event[Any], payload: dict[str, Any]) -> Event[Any]:
    """A copy of ``event`` (same id, chain, source, timestamp) with another payload:
    a received event whose data is rebuilt from this process's declaration."""
    fields = list(tuple.__iter__(event))
    fields[1] = payload
    return new_event(Event, tuple(fields))
