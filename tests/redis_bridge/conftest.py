"""Fixtures for the Redis bridge tests: a real redis-server, a clean database, a client.

The directory is the package ``redis_bridge``, not ``redis``: pytest puts ``tests/`` on
``sys.path``, where a package named ``redis`` would shadow redis-py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

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
