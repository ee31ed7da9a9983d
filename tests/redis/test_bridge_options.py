"""RedisBridge's options, defaults, stats(), repr and the import without redis-py
(REDIS_DESIGN.md, the signature at the top). Bad options raise TypeError or
ValueError naming the option, before the bridge touches the bus or the server."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
from bridge_helpers import flush
from redis.asyncio import Redis

from eventbus import EventBus, UnknownEventError
from eventbus.redis import BridgeStats, RedisBridge

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    """A client that these tests never connect (options are checked without a server)."""
    client = Redis(host="127.0.0.1", port=1)
    yield client
    await client.aclose()


def make(bus: EventBus, client: Redis, **options: Any) -> RedisBridge:
    """A bridge with ``options``, forwarding ``order.*`` unless told otherwise."""
    options.setdefault("forward", ["order.*"])
    return RedisBridge(bus, client, **options)


# ---------------------------------------------------------------- bus and client


@pytest.mark.parametrize("not_a_bus", [None, object(), "eventbus"])
def test_bus_must_be_an_event_bus(client: Redis, not_a_bus: object) -> None:
    with pytest.raises(TypeError, match="bus must be an EventBus"):
        RedisBridge(not_a_bus, client, forward=["order.*"])  # type: ignore[arg-type]


def test_a_synchronous_redis_client_is_refused_naming_the_asyncio_client(bus: EventBus) -> None:
    sync_client = redis.Redis(host="127.0.0.1", port=1)
    try:
        with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis"):
            RedisBridge(bus, sync_client, forward=["order.*"])  # type: ignore[arg-type]
    finally:
        sync_client.close()


@pytest.mark.parametrize("not_a_client", [None, object(), "redis://localhost"])
def test_a_client_that_is_no_redis_client_is_refused(bus: EventBus, not_a_client: object) -> None:
    with pytest.raises(TypeError, match="client"):
        RedisBridge(bus, not_a_client, forward=["order.*"])  # type: ignore[arg-type]


# ---------------------------------------------------------------- key names


KEY_OPTIONS = ["stream", "group", "consumer", "dead_letter"]


@pytest.mark.parametrize("option", KEY_OPTIONS)
@pytest.mark.parametrize("value", ["", " ", " padded", "padded "])
def test_a_key_option_must_be_a_non_empty_name_without_surrounding_spaces(
    bus: EventBus, client: Redis, option: str, value: str
) -> None:
    with pytest.raises(ValueError, match=option):
        make(bus, client, **{option: value})


@pytest.mark.parametrize("option", KEY_OPTIONS)
@pytest.mark.parametrize("value", [1, b"bytes", ["list"]])
def test_a_key_option_must_be_a_str(
    bus: EventBus, client: Redis, option: str, value: object
) -> None:
    with pytest.raises(TypeError, match=option):
        make(bus, client, **{option: value})


def test_a_key_option_may_hold_colons_and_unicode(bus: EventBus, client: Redis) -> None:
    bridge = make(
        bus,
        client,
        stream="shop:événements",
        group="billing:eu",
        consumer="web-1:pid 7",
        dead_letter="shop:dead",
    )

    assert bridge.stream == "shop:événements"
    assert bridge.group == "billing:eu"
    assert bridge.consumer == "web-1:pid 7"
    assert bridge.dead_letter == "shop:dead"


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("pattern", ["", "order placed", "order.*.x", "*.placed", "order..x"])
def test_forward_refuses_an_invalid_name_or_pattern(
    bus: EventBus, client: Redis, pattern: str
) -> None:
    with pytest.raises(ValueError, match=r"^forward: ") as raised:
        make(bus, client, forward=["order.placed", pattern])

    assert repr(pattern) in str(raised.value)


@pytest.mark.parametrize("pattern", [1, None, b"order.placed"])
def test_forward_refuses_a_pattern_that_is_not_a_str(
    bus: EventBus, client: Redis, pattern: object
) -> None:
    with pytest.raises(TypeError, match=r"^forward: .*must be a str"):
        make(bus, client, forward=["order.placed", pattern])


def test_forward_that_is_no_iterable_is_a_type_error(bus: EventBus, client: Redis) -> None:
    with pytest.raises(TypeError, match=r"^forward: "):
        make(bus, client, forward=42)


def test_a_bridge_with_no_forward_and_no_group_is_refused(bus: EventBus, client: Redis) -> None:
    with pytest.raises(ValueError, match="forward"):
        RedisBridge(bus, client)


def test_a_bridge_with_an_empty_forward_and_no_group_is_refused(
    bus: EventBus, client: Redis
) -> None:
    with pytest.raises(ValueError, match="forward"):
        RedisBridge(bus, client, forward=[])


def test_a_bridge_with_a_group_needs_no_forward(bus: EventBus, client: Redis) -> None:
    bridge = RedisBridge(bus, client, group="billing")

    assert bridge.forward == ()
    assert bridge.group == "billing"


def test_forward_is_kept_as_a_tuple_in_the_given_order(bus: EventBus, client: Redis) -> None:
    bridge = make(bus, client, forward=iter(["order.*", "invoice.paid", "*"]))

    assert bridge.forward == ("order.*", "invoice.paid", "*")


def test_on_a_strict_bus_a_forward_pattern_must_match_a_declared_event(client: Redis) -> None:
    bus = EventBus("shop", strict=True)
    bus.declare("order.placed")

    with pytest.raises(UnknownEventError, match=r"did you mean 'order\.placed'"):
        make(bus, client, forward=["order.plaecd"])


def test_on_a_strict_bus_a_pattern_matching_no_declared_event_is_refused(client: Redis) -> None:
    bus = EventBus("shop", strict=True)
    bus.declare("order.placed")

    with pytest.raises(UnknownEventError, match=r"invoice\.\*"):
        make(bus, client, forward=["order.*", "invoice.*"])


def test_on_a_strict_bus_declared_names_and_matching_patterns_are_accepted(
    client: Redis,
) -> None:
    bus = EventBus("shop", strict=True)
    bus.declare("order.placed")
    bus.declare("invoice.paid")

    bridge = make(bus, client, forward=["order.*", "invoice.paid"])

    assert bridge.forward == ("order.*", "invoice.paid")


# ---------------------------------------------------------------- counts


@pytest.mark.parametrize("option", ["batch", "maxlen", "max_deliveries"])
@pytest.mark.parametrize("value", [0, -1])
def test_a_count_option_below_1_is_a_value_error(
    bus: EventBus, client: Redis, option: str, value: int
) -> None:
    with pytest.raises(ValueError, match=option):
        make(bus, client, **{option: value})


@pytest.mark.parametrize("option", ["batch", "maxlen", "max_deliveries"])
@pytest.mark.parametrize("value", [True, 1.0, 2.5, "10"])
def test_a_count_option_must_be_an_int_not_a_bool_or_float(
    bus: EventBus, client: Redis, option: str, value: object
) -> None:
    with pytest.raises(TypeError, match=option):
        make(bus, client, **{option: value})


def test_maxlen_none_is_accepted(bus: EventBus, client: Redis) -> None:
    make(bus, client, maxlen=None)


@pytest.mark.parametrize("option", ["batch", "max_deliveries"])
def test_a_count_option_may_not_be_none(bus: EventBus, client: Redis, option: str) -> None:
    with pytest.raises(TypeError, match=option):
        make(bus, client, **{option: None})


def test_count_options_of_1_are_accepted(bus: EventBus, client: Redis) -> None:
    bridge = make(bus, client, batch=1, maxlen=1, max_deliveries=1)

    assert bridge.max_deliveries == 1


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize("option", ["block", "min_idle", "dedup_window"])
@pytest.mark.parametrize("value", [0, 0.0])
def test_a_duration_that_must_be_positive_refuses_zero(
    bus: EventBus, client: Redis, option: str, value: float
) -> None:
    with pytest.raises(ValueError, match=option):
        make(bus, client, **{option: value})


@pytest.mark.parametrize("option", ["block", "min_idle", "dedup_window", "retry_delay"])
@pytest.mark.parametrize(
    "value", [-1, -0.001, math.inf, -math.inf, math.nan], ids=["-1", "-1ms", "inf", "-inf", "nan"]
)
def test_a_duration_must_be_a_finite_non_negative_number(
    bus: EventBus, client: Redis, option: str, value: float
) -> None:
    with pytest.raises(ValueError, match=option):
        make(bus, client, **{option: value})


@pytest.mark.parametrize("option", ["block", "min_idle", "dedup_window", "retry_delay"])
@pytest.mark.parametrize("value", [True, "1", [1]])
def test_a_duration_must_be_a_number(
    bus: EventBus, client: Redis, option: str, value: object
) -> None:
    with pytest.raises(TypeError, match=option):
        make(bus, client, **{option: value})


@pytest.mark.parametrize("option", ["block", "min_idle", "retry_delay"])
def test_a_duration_may_not_be_none(bus: EventBus, client: Redis, option: str) -> None:
    with pytest.raises(TypeError, match=option):
        make(bus, client, **{option: None})


def test_retry_delay_may_be_zero(bus: EventBus, client: Redis) -> None:
    make(bus, client, group="billing", retry_delay=0)


def test_dedup_window_none_turns_dedup_off_and_is_the_default(bus: EventBus, client: Redis) -> None:
    make(bus, client, dedup_window=None)


def test_small_positive_durations_are_accepted(bus: EventBus, client: Redis) -> None:
    make(bus, client, group="g", block=0.001, min_idle=0.01, retry_delay=0.001, dedup_window=0.5)


# ---------------------------------------------------------------- start_at


@pytest.mark.parametrize("start_at", ["$", "0"])
def test_start_at_accepts_dollar_and_zero(bus: EventBus, client: Redis, start_at: str) -> None:
    make(bus, client, group="billing", start_at=start_at)


@pytest.mark.parametrize("start_at", [">", "", "0-0", "1700000000000-0", "now"])
def test_start_at_refuses_anything_but_dollar_and_zero(
    bus: EventBus, client: Redis, start_at: str
) -> None:
    with pytest.raises(ValueError, match="start_at"):
        make(bus, client, group="billing", start_at=start_at)


@pytest.mark.parametrize("start_at", [0, None])
def test_start_at_that_is_not_a_str_is_a_type_error(
    bus: EventBus, client: Redis, start_at: object
) -> None:
    with pytest.raises(TypeError, match="start_at must be a str"):
        make(bus, client, group="billing", start_at=start_at)


# ---------------------------------------------------------------- defaults


def test_defaults(bus: EventBus, client: Redis) -> None:
    bridge = RedisBridge(bus, client, forward="order.*")

    assert bridge.stream == "eventbus"
    assert bridge.group is None
    assert bridge.consumer.startswith(f"{socket.gethostname()}-{os.getpid()}-")
    assert bridge.dead_letter == "eventbus:dead"
    assert bridge.max_deliveries == 5
    assert bridge.forward == ("order.*",)
    assert not bridge.running


def test_the_dead_letter_stream_defaults_to_the_stream_name_plus_dead(
    bus: EventBus, client: Redis
) -> None:
    assert make(bus, client, stream="shop").dead_letter == "shop:dead"


def test_the_consumer_defaults_to_hostname_dash_pid_dash_random(
    bus: EventBus, client: Redis
) -> None:
    bridge = make(bus, client, group="billing")

    host, pid, random = bridge.consumer.rsplit("-", 2)
    assert (host, pid) == (socket.gethostname(), str(os.getpid()))
    assert len(random) == 6
    assert int(random, 16) >= 0


def test_two_bridges_of_one_process_get_different_default_consumer_names(
    bus: EventBus, client: Redis
) -> None:
    assert make(bus, client, group="billing").consumer != make(bus, client, group="b").consumer


def test_options_given_are_kept(bus: EventBus, client: Redis) -> None:
    bridge = make(
        bus,
        client,
        stream="shop",
        group="billing",
        consumer="web-1",
        dead_letter="graveyard",
        max_deliveries=3,
    )

    assert (bridge.stream, bridge.group, bridge.consumer) == ("shop", "billing", "web-1")
    assert bridge.dead_letter == "graveyard"
    assert bridge.max_deliveries == 3


def test_a_bad_option_leaves_the_bus_untouched(bus: EventBus, client: Redis) -> None:
    with pytest.raises(ValueError, match="start_at"):
        make(bus, client, group="billing", start_at="now")

    report = bus.emit_sync("order.placed", when=object())  # nothing checks payloads
    assert report.ok


# ---------------------------------------------------------------- import without redis-py


def test_importing_eventbus_redis_without_redis_py_names_the_extra() -> None:
    script = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "try:\n"
        "    import eventbus.redis\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, '|', error.name, '|', error)\n"
        "else:\n"
        "    print('imported')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    kind, name, message = (part.strip() for part in result.stdout.split("|"))
    assert kind == "ImportError"
    assert name == "redis"
    assert "eventbus[redis]" in message


def test_importing_eventbus_alone_does_not_import_redis() -> None:
    script = "import sys\nimport eventbus\nprint('redis' in sys.modules)\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- stats


async def test_stats_of_a_new_bridge_are_all_zero(bus: EventBus, client: Redis) -> None:
    stats = await make(bus, client).stats()

    assert stats == BridgeStats(
        forwarded=0,
        outbox=0,
        consumed=0,
        acked=0,
        retried=0,
        dead_lettered=0,
        duplicates=0,
        echoes=0,
        connection_errors=0,
        connected=True,
        pending=None,
        lag=None,
    )


async def test_stats_count_forwarded_entries(bus: EventBus, redis_client: Redis) -> None:
    async with make(bus, redis_client) as bridge:
        for n in range(3):
            await bus.emit("order.placed", n=n)
        await bus.emit("invoice.paid")
        await flush(bridge)

        stats = await bridge.stats()

    assert stats.forwarded == 3
    assert stats.outbox == 0


async def test_stats_outbox_counts_entries_waiting_to_be_sent(
    bus: EventBus, redis_client: Redis
) -> None:
    async with make(bus, redis_client) as bridge:
        for n in range(4):
            bus.emit_sync("order.placed", n=n)  # the writer has not run yet

        stats = await bridge.stats()

        assert (stats.outbox, stats.forwarded) == (4, 0)
        await flush(bridge)


async def test_stats_of_a_bridge_without_group_have_no_pending_or_lag(
    bus: EventBus, redis_client: Redis
) -> None:
    async with make(bus, redis_client) as bridge:
        await bus.emit("order.placed")
        await flush(bridge)

        stats = await bridge.stats()

    assert stats.pending is None
    assert stats.lag is None
    assert stats.connected is True


async def test_stats_keep_counting_across_a_restart(bus: EventBus, redis_client: Redis) -> None:
    bridge = make(bus, redis_client)
    for _ in range(2):
        async with bridge:
            await bus.emit("order.placed")

    assert (await bridge.stats()).forwarded == 2


async def test_stats_are_a_frozen_snapshot(bus: EventBus, client: Redis) -> None:
    stats = await make(bus, client).stats()

    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.forwarded = 1  # type: ignore[misc]
    assert dataclasses.is_dataclass(stats)


# ---------------------------------------------------------------- repr


def test_repr_shows_stream_group_consumer_and_that_it_is_stopped(
    bus: EventBus, client: Redis
) -> None:
    bridge = make(bus, client, stream="shop", group="billing", consumer="web-1")

    assert repr(bridge) == "<RedisBridge stream='shop' group='billing' consumer='web-1' stopped>"


async def test_repr_shows_that_it_is_running(bus: EventBus, redis_client: Redis) -> None:
    async with make(bus, redis_client, stream="shop", consumer="web-1") as bridge:
        text = repr(bridge)

    assert text == "<RedisBridge stream='shop' group=None consumer='web-1' running>"
