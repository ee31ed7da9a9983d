"""Fixtures for the Redis bridge tests: a real redis-server (``eventbus.redis.testing``), a
clean database, clients, and a ``Watch`` on logs and handled events.

This directory has no ``__init__.py`` on purpose: as a package it would be named ``redis``
and shadow redis-py. Its modules import each other by their own names (``bridge_helpers``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import structlog
from bridge_helpers import ClientFactory, Watch
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from eventbus.redis.testing import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server shared by the whole session (no persistence), stopped at the end."""
    with RedisServer(directory=tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, with every database emptied before the test."""
    redis_server.flushall()
    return redis_server.url


@pytest_asyncio.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """An asyncio client (bytes replies) for the shared server, closed after the test."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private append-only redis-server for tests that kill or restart it."""
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        yield server


@pytest_asyncio.fixture
async def new_client(own_redis_server: RedisServer) -> AsyncIterator[ClientFactory]:
    """Makes clients of the private server that fail at once while it is down (no retries,
    0.5 s to connect); all closed after the test."""
    clients: list[Redis] = []

    def make() -> Redis:
        client = Redis.from_url(
            own_redis_server.url,
            socket_connect_timeout=0.5,
            socket_timeout=2.0,
            retry=Retry(NoBackoff(), 0),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def watch() -> Watch:
    """A ``Watch`` that receives every log entry of the test."""
    watcher = Watch()
    structlog.configure(processors=[watcher])  # tests/conftest.py resets structlog afterwards
    return watcher
