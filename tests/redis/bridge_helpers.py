"""Helpers shared by the Redis bridge tests: a ``Watch`` on logs and handled events, consumer
bridges quick to notice new entries, hand-made stream entries and what a group has pending.
The fixtures are in ``conftest.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from redis.asyncio import Redis

from eventbus import Event, EventBus
from eventbus.redis import RedisBridge

STREAM = "events"
DEAD = f"{STREAM}:dead"
WAIT = 60.0
"""Seconds every wait is guarded by, so that a test that hangs fails instead. Generous on
purpose: a loaded machine is slow, not broken, and no test passes by waiting less."""

ClientFactory = Callable[[], Redis]


# ---------------------------------------------------------------- watching


class Watch:
    """Everything logged during the test (it is the structlog processor) and every event the
    test's handlers saw; ``until`` waits until a condition on them holds."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.handled: list[Event] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        self.entries.append({**event_dict, "log_level": method})
        self.changed()
        raise structlog.DropEvent

    def record(self, event: Event) -> None:
        """A handler: keeps the event."""
        self.handled.append(event)
        self.changed()

    def changed(self) -> None:
        for check, waiter in self._waiters:
            if not waiter.done() and check():
                waiter.set_result(None)

    async def until(self, check: Callable[[], bool]) -> None:
        if check():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((check, waiter))
        try:
            await asyncio.wait_for(waiter, WAIT)
        finally:
            self._waiters.remove((check, waiter))

    def logged(self, message: str, **matching: Any) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.entries
            if entry["event"] == message
            and all(entry.get(key) == value for key, value in matching.items())
        ]

    def acked(self, group: str = "g") -> int:
        return sum(entry["count"] for entry in self.logged("eventbus.redis.acked", group=group))

    def dead_lettered(self) -> int:
        return len(self.logged("eventbus.redis.dead_lettered"))


# ---------------------------------------------------------------- clients and bridges


async def create_group(client: Redis, group: str = "g") -> None:
    """The group, at the end of the (empty) stream: what a bridge started earlier would do."""
    await client.xgroup_create(STREAM, group, id="$", mkstream=True)


def consumer(bus: EventBus, client: Redis, **options: Any) -> RedisBridge:
    """A consumer bridge (of group "g" on ``STREAM`` unless ``options`` say otherwise), quick to
    notice new entries."""
    settings: dict[str, Any] = {
        "stream": STREAM,
        "group": "g",
        "consumer": "c1",
        "block": 0.05,
        "retry_delay": 0.05,
    }
    settings.update(options)
    return RedisBridge(bus, client, **settings)


async def flush(bridge: RedisBridge) -> None:
    """``bridge.flush()``, failing after ``WAIT`` seconds."""
    await asyncio.wait_for(bridge.flush(), WAIT)


# ---------------------------------------------------------------- entries


def entry(name: str = "order.placed", **fields: str) -> dict[str, str]:
    """The fields of a hand-made stream entry in the bridge's format ("v" 1)."""
    made = {
        "v": "1",
        "name": name,
        "id": "remote-1",
        "depth": "0",
        "ts": "1700000000.25",
        "payload": '{"total": 12}',
    }
    made.update(fields)
    return made


async def add(client: Redis, *event_ids: str) -> list[str]:
    """Hand-made entries, one per event id; their entry ids."""
    # redis-py declares types that fit neither these fields nor the reply: Any.
    xadd: Any = client.xadd
    return [(await xadd(STREAM, entry(id=event_id))).decode() for event_id in event_ids]


def text_fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


async def stream_entries(client: Redis, stream: str = STREAM) -> list[dict[str, str]]:
    """Every entry of ``stream``, oldest first, as text fields."""
    found: Any = await client.xrange(stream)  # redis-py's declared reply type: Any, as above
    return [text_fields(fields) for _, fields in found]


def ids(events: list[Event]) -> list[str]:
    return [event.id for event in events]


# ---------------------------------------------------------------- pending entries


async def pending(client: Redis, group: str = "g") -> int:
    summary = await client.xpending(STREAM, group)
    return int(summary["pending"])


async def pending_entries(
    client: Redis, stream: str = STREAM, group: str = "g"
) -> list[tuple[str, str, int]]:
    """(entry id, consumer, times delivered) of each entry the group has not acknowledged."""
    # redis-py declares reply types that fit no actual reply: Any.
    found: Any = await client.xpending_range(stream, group, min="-", max="+", count=100)
    return [
        (item["message_id"].decode(), item["consumer"].decode(), int(item["times_delivered"]))
        for item in found
    ]


async def pending_ids(client: Redis) -> list[str]:
    """The entry ids pending in group "g"."""
    return [entry_id for entry_id, _, _ in await pending_entries(client)]


# ---------------------------------------------------------------- handlers


def failing(runs: list[str], failures: int | None = None) -> Callable[[Event], None]:
    """A handler that fails its first ``failures`` runs (always, with None)."""

    def handle(event: Event) -> None:
        runs.append(event.id)
        if failures is None or len(runs) <= failures:
            raise ValueError(f"cannot handle {event.id} (run {len(runs)})")

    return handle


async def until_nothing_pending(client: Redis, group: str = "g") -> None:
    """Wait until group ``group`` has nothing pending: acknowledgements are sent in the
    background as entries settle (each poll is a round trip to the server)."""
    async with asyncio.timeout(WAIT):
        while await pending(client, group):
            await asyncio.sleep(0)
