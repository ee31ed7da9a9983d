"""The settings of a Redis bridge: every argument of ``RedisBridge`` is checked
here, once, and the result is an ``Options`` that the rest of the bridge
trusts (times already in the units Redis takes: whole milliseconds)."""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from eventbus import EventBus
from eventbus._checks import check_count, check_timeout

from ._link import redis

__all__ = ["Options", "check_options"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """A bridge's settings, as ``check_options`` returns them."""

    stream: str
    group: str | None
    consumer: str
    forward: tuple[str, ...]
    batch: int
    block_ms: int
    maxlen: int | None
    max_deliveries: int
    retry_delay: float
    min_idle_ms: int
    dead_letter: str
    dedup_ms: int | None
    start_at: str
    confirm: bool
    max_outbox: int
    when_full: str
    send_timeout: float
    stream_only: bool


def check_options(
    bus: object,
    client: object,
    *,
    stream: object,
    group: object,
    consumer: object,
    forward: Iterable[str] | str,
    batch: object,
    block: object,
    maxlen: object,
    max_deliveries: object,
    retry_delay: object,
    min_idle: object,
    dead_letter: object,
    dedup_window: object,
    start_at: object,
    confirm: object = False,
    max_outbox: object = 100_000,
    when_full: object = "raise",
    send_timeout: object = 10.0,
    stream_only: object = False,
) -> Options:
    """Check the arguments of ``RedisBridge`` (see its documentation); ``TypeError``
    or ``ValueError`` (``UnknownEventError`` for ``forward`` on a strict bus) name
    the first one that is wrong."""
    if not isinstance(bus, EventBus):
        raise TypeError(f"bus must be an EventBus, not {type(bus).__name__}")
    if isinstance(client, redis.Redis) or not hasattr(client, "xreadgroup"):
        raise TypeError(
            f"client must be an asyncio Redis client (redis.asyncio.Redis), "
            f"not {type(client).__module__}.{type(client).__qualname__}"
        )
    # In the order of the original checks: with several wrong, the first is named.
    checked_stream = _check_key(stream, "stream")
    checked_group = None if group is None else _check_key(group, "group")
    checked_consumer = _check_key(
        consumer if consumer is not None else default_consumer(),
        "consumer",
    )
    checked_forward = _check_forward(bus, forward)
    if not checked_forward and checked_group is None:
        raise ValueError("a bridge with no forward patterns and no group would do nothing")
    checked_dead_letter = _check_key(
        dead_letter if dead_letter is not None else f"{checked_stream}:dead", "dead_letter"
    )
    checked_max_deliveries = check_count(max_deliveries, "max_deliveries", minimum=1)
    checked_batch = check_count(batch, "batch", minimum=1)
    block_ms = _milliseconds(block, "block")
    checked_retry_delay = _check_seconds(retry_delay, "retry_delay", allow_zero=True)
    min_idle_ms = _milliseconds(min_idle, "min_idle")
    dedup_ms = None if dedup_window is None else _milliseconds(dedup_window, "dedup_window")
    checked_start_at = _check_start_at(start_at)
    if not isinstance(confirm, bool):
        raise TypeError(f"confirm must be a bool, not {type(confirm).__name__}")
    checked_max_outbox = check_count(max_outbox, "max_outbox", minimum=1)
    if when_full not in ("raise", "wait"):
        raise ValueError(f"when_full must be 'raise' or 'wait', not {when_full!r}")
    checked_send_timeout = _check_seconds(send_timeout, "send_timeout")
    if not isinstance(stream_only, bool):
        raise TypeError(f"stream_only must be a bool, not {type(stream_only).__name__}")
    if stream_only and checked_group is None:
        raise ValueError(
            "stream_only=True needs a group: the handlers of forwarded events run from "
            "the stream only, and a bridge without a group never reads it"
        )
    if checked_retry_delay * 1000 >= min_idle_ms:
        raise ValueError(
            f"retry_delay ({retry_delay} s) must be shorter than min_idle ({min_idle} s): "
            "a failed entry idle for min_idle is claimed as abandoned before its retry"
        )
    return Options(
        stream=checked_stream,
        group=checked_group,
        consumer=checked_consumer,
        forward=checked_forward,
        batch=checked_batch,
        block_ms=block_ms,
        maxlen=None if maxlen is None else check_count(maxlen, "maxlen", minimum=1),
        max_deliveries=checked_max_deliveries,
        retry_delay=checked_retry_delay,
        min_idle_ms=min_idle_ms,
        dead_letter=checked_dead_letter,
        dedup_ms=dedup_ms,
        start_at=checked_start_at,
        confirm=confirm,
        max_outbox=checked_max_outbox,
        when_full=str(when_full),
        send_timeout=checked_send_timeout,
        stream_only=stream_only,
    )


def default_consumer() -> str:
    """``<host>-<pid>-<random>``: unique per process, so that workers started
    together (``uvicorn --workers 4``) never share a name; a clean stop removes
    the name from the group, and stale names are removed by the other consumers."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _check_key(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value or value != value.strip():
        raise ValueError(
            f"{what} must be a non-empty name without surrounding spaces, not {value!r}"
        )
    return value


def _check_forward(bus: EventBus, forward: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(forward, str):
        forward = (forward,)
    try:
        return tuple(bus.check_subscribable(pattern) for pattern in forward)
    except TypeError as error:
        raise TypeError(f"forward: {error}") from None
    except ValueError as error:  # UnknownEventError is a LookupError: it passes as is
        raise ValueError(f"forward: {error}") from None


def _check_seconds(value: object, what: str, *, allow_zero: bool = False) -> float:
    seconds = check_timeout(value, what)
    if seconds is None:
        raise TypeError(f"{what} must be a number of seconds, not None")
    if not math.isfinite(seconds):
        raise ValueError(f"{what} must be a finite number of seconds, not {seconds}")
    if seconds == 0 and not allow_zero:
        raise ValueError(f"{what} must be > 0, not 0")
    return seconds


def _milliseconds(value: object, what: str) -> int:
    """A positive number of seconds, as whole milliseconds (at least 1)."""
    return max(1, round(_check_seconds(value, what) * 1000))


def _check_start_at(start_at: object) -> str:
    if not isinstance(start_at, str):
        raise TypeError(f"start_at must be a str, not {type(start_at).__name__}")
    if start_at not in ("$", "0"):
        raise ValueError(
            f"start_at must be '$' (new entries) or '0' (the whole stream), not {start_at!r}"
        )
    return start_at
