"""What both sides of a Redis bridge share: the client, the stream, the log,
the counters, and how a lost server is reported and waited out."""

from __future__ import annotations

import asyncio
from typing import Any, Final

try:
    import redis
    import redis.asyncio
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "eventbus.redis needs the redis client; install the extra: pip install 'eventbus[redis]'",
        name=error.name,
    ) from error

from eventbus._errors import safe_repr

__all__ = ["COUNTERS", "DOWN", "Link", "describe", "message", "redis"]

DOWN: Final = (redis.ConnectionError, redis.TimeoutError, OSError, TimeoutError)
"""What a lost or unreachable server raises: the bridge waits and tries again."""

COUNTERS: Final = (
    "forwarded",
    "consumed",
    "acked",
    "retried",
    "dead_lettered",
    "duplicates",
    "echoes",
    "connection_errors",
    "trimmed_unread",
)
"""What ``RedisBridge.stats()`` counts (see ``BridgeStats``)."""

_BACK_OFF: Final = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
"""Seconds to wait after the 1st, 2nd, ... failure in a row (the last repeats)."""


def message(error: BaseException) -> str:
    """An exception's message, even when its ``str`` is broken."""
    try:
        return str(error)
    except Exception:
        return safe_repr(error)


def describe(error: BaseException) -> str:
    """``Type: message`` of an exception, for a log entry."""
    text = message(error)
    return f"{type(error).__qualname__}: {text}" if text else type(error).__qualname__


class Link:
    """The connection of a bridge to its stream, as both its sides see it."""

    __slots__ = ("client", "connected", "consumer", "counts", "group", "log", "stream")

    def __init__(
        self, client: Any, stream: str, group: str | None, consumer: str, log: Any
    ) -> None:
        # redis-py's declared reply types are unions that fit no real reply: Any.
        self.client: Final[Any] = client
        self.stream: Final = stream
        self.group: Final = group
        self.consumer: Final = consumer
        self.log: Final = log
        self.counts: Final = dict.fromkeys(COUNTERS, 0)
        self.connected = True

    def where(self) -> dict[str, str | None]:
        """The keys every bridge log entry carries."""
        return {"stream": self.stream, "group": self.group, "consumer": self.consumer}

    def server_up(self) -> None:
        """A command reached the server: report the end of an outage."""
        if not self.connected:
            self.connected = True
            self.log.info("eventbus.redis.reconnected", **self.where())

    def server_down(self, error: BaseException) -> None:
        """The server could not be reached: count it, report the outage once."""
        self.counts["connection_errors"] += 1
        if self.connected:
            self.connected = False
            self.log.error("eventbus.redis.connection_lost", error=describe(error), **self.where())

    async def recover(self, error: Exception, failures: int) -> int:
        """Report a failed step (a lost server, or anything unexpected: a loop of
        the bridge must not end silently), wait, and return the failure count."""
        if isinstance(error, DOWN):
            self.server_down(error)
        else:
            self.log.error("eventbus.redis.error", exc_info=error, **self.where())
        await asyncio.sleep(_BACK_OFF[min(failures, len(_BACK_OFF) - 1)])
        return failures + 1
