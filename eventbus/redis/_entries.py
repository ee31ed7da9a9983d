"""Stream entries: an ``Event`` as the flat string fields of a Redis Streams
entry, and back.

Only what JSON carries exactly crosses a process boundary: ``str``, ``int``,
finite ``float``, ``bool``, ``None``, ``list`` and ``dict`` with ``str`` keys.
Anything else (a tuple that would come back as a list, a ``datetime``, NaN)
is refused before anything is sent, naming the key, so an event never
arrives in another process different from how it left.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from eventbus import Event, PayloadError
from eventbus._event import new_event
from eventbus._interceptors import NO_HEADERS, check_headers
from eventbus._names import check_name

__all__ = ["FORMAT", "BadEntry", "Entry", "Received", "decode", "encode", "field", "text"]

Entry = tuple[str, dict[Any, Any] | None, int]
"""A read entry: (entry id, raw fields or None when the entry was trimmed, delivery count)."""

FORMAT: Final = "1"
"""Version of the entry layout, sent as the ``v`` field."""

_MAX_NESTING: Final = 64
_MAX_HEADERS_FIELD: Final = 20_000
"""Characters of the ``headers`` field read at most (16 headers of 1 KiB, quoted)."""
_ACCEPTED: Final = "str, int, float, bool, None, list, or dict with str keys"
_encode_json: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _refuse(name: str, stream: str, path: str, why: str) -> PayloadError:
    return PayloadError(
        f"event {name!r}: payload key {path!r} cannot be sent to Redis stream {stream!r}: "
        f"{why} (JSON carries {_ACCEPTED})"
    )


def _check_json(name: str, stream: str, path: str, value: object, nesting: int) -> None:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise _refuse(name, stream, path, f"{value!r} is not a JSON number")
        return
    if nesting >= _MAX_NESTING:
        raise _refuse(name, stream, path, f"nested deeper than {_MAX_NESTING} levels")
    if isinstance(value, list) and kind is list:
        for index, item in enumerate(value):
            _check_json(name, stream, f"{path}[{index}]", item, nesting + 1)
        return
    if isinstance(value, dict) and kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                why = f"dict key {key!r} is a {type(key).__name__}, not a str"
                raise _refuse(name, stream, path, why)
            _check_json(name, stream, f"{path}.{key}", item, nesting + 1)
        return
    why = f"{kind.__name__} is not JSON"
    if isinstance(value, enum.Enum):
        why += f"; send its value ({value.value!r})"
    raise _refuse(name, stream, path, why)


def encode(
    event: Event,
    ancestors: tuple[str, ...],
    origin: str,
    stream: str,
    headers: Mapping[str, str] = NO_HEADERS,
) -> dict[str, str]:
    """The entry fields of ``event``; ``PayloadError`` if its payload cannot travel.

    ``ancestors`` are the names of the emissions that led to it (outermost
    first), ``origin`` the consumer group of the process that emitted it and
    ``headers`` what the bus's interceptors carry with it (a trace context).
    """
    name = event.name
    payload = event.payload
    for key, value in payload.items():
        _check_json(name, stream, key, value, 0)
    fields = {
        "v": FORMAT,
        "name": name,
        "id": event.id,
        "ts": repr(event.timestamp),
        "payload": _encode_json(dict(payload)) if payload else "{}",
    }
    if event.depth:
        fields["depth"] = str(event.depth)
    if event.source is not None:
        fields["source"] = event.source
    if event.parent_id is not None:
        fields["parent"] = event.parent_id
    if ancestors:
        fields["chain"] = " ".join(ancestors)  # names never contain spaces
    if origin:
        fields["origin"] = origin
    if headers:
        fields["headers"] = _encode_json(dict(check_headers(headers)))
    return fields


class BadEntry(ValueError):
    """A stream entry that is not an event this version can read."""


def text(value: bytes | str) -> str:
    """A field as text, whichever way the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def field(fields: dict[Any, Any] | None, key: str) -> str | None:
    """One field of a raw entry, whichever way the client decodes replies."""
    if not fields:
        return None
    value = fields.get(key.encode(), fields.get(key))
    return None if value is None else text(value)


class Received:
    """What a stream entry carries: the event and where it came from."""

    __slots__ = ("ancestors", "event", "headers", "origin")

    def __init__(
        self,
        event: Event,
        ancestors: tuple[str, ...],
        origin: str,
        headers: Mapping[str, str] = NO_HEADERS,
    ) -> None:
        self.event: Final = event
        self.ancestors: Final = ancestors
        self.origin: Final = origin
        self.headers: Final = headers


def decode(raw: Mapping[bytes, bytes] | Mapping[str, str]) -> Received:
    """Read an entry written by ``encode``; ``BadEntry`` says what is wrong with it."""
    try:
        keys, values = raw.keys(), raw.values()
        fields: dict[str, str] = dict(zip(map(bytes.decode, keys), map(bytes.decode, values)))  # type: ignore[arg-type]  # noqa: B905
    except TypeError:  # a client made with decode_responses=True: str already
        fields = dict(raw)  # type: ignore[arg-type]
    except UnicodeDecodeError as error:
        raise BadEntry(f"entry is not UTF-8: {error}") from None
    version = fields.get("v")
    if version != FORMAT:
        raise BadEntry(f"entry format {version!r} is not {FORMAT!r}")
    try:
        name = check_name(fields["name"])
        event_id = fields["id"]
        depth = int(fields.get("depth", "0"))
        timestamp = float(fields["ts"])
        payload = json.loads(fields["payload"])
        ancestors = tuple(check_name(n) for n in fields.get("chain", "").split())
        headers = _decode_headers(fields.get("headers"))
    except KeyError as missing:
        raise BadEntry(f"entry has no {missing.args[0]!r} field") from None
    except (TypeError, ValueError, RecursionError) as error:  # deep JSON: RecursionError
        raise BadEntry(f"entry is malformed: {error}") from None
    if not event_id or depth < 0 or type(payload) is not dict:
        raise BadEntry("entry has an empty id, a negative depth or a payload that is no object")
    fields_of_event = (
        name,
        payload,
        fields.get("source"),
        event_id,
        fields.get("parent"),
        depth,
        timestamp,
    )
    event = new_event(Event, fields_of_event)
    return Received(event, ancestors, fields.get("origin", ""), headers)


def _decode_headers(value: str | None) -> Mapping[str, str]:
    """The ``headers`` field (a JSON object of str to str, bounded: see
    ``check_headers``); ``ValueError`` or ``TypeError`` for anything else."""
    if value is None:
        return NO_HEADERS
    if len(value) > _MAX_HEADERS_FIELD:
        raise ValueError(f"headers field of {len(value)} characters")
    headers = json.loads(value)
    if type(headers) is not dict:
        raise ValueError("headers field is no JSON object")
    return check_headers(headers)
