"""Process helpers shared by the tests: polling, free ports, a throwaway redis-server.

Import as ``from helpers import wait_until`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis

from jobpool.embedded import find_redis_server

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02, message: str = ""
) -> T:
    """Poll predicate until it returns something truthy, and return that.

    Tests of processes must wait for effects (a pid gone, a key written) rather than sleep a
    fixed time: fixed sleeps are either slow or flaky. Raises AssertionError on timeout so
    that pytest reports it as a failed expectation.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server child process on a unix socket and a loopback TCP port, without persistence.

    It runs in the foreground (no daemonize), so the test process owns it and can kill it;
    restart() keeps the same socket and port, so clients can test reconnection.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket_path = workdir / "redis.sock"
        self.log_path = workdir / "redis.log"
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def tcp_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "server not started"
        return self._proc.pid

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new client on the unix socket; kwargs go to ``redis.Redis.from_url``."""
        return redis.Redis.from_url(self.url, **kwargs)

    def is_running(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            return False
        try:
            with self.client(socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 10.0) -> None:
        argv = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        argv += ["--dir", str(self.workdir), "--save", "", "--appendonly", "no", "--hz", "100"]
        argv += ["--daemonize", "no", "--logfile", str(self.log_path)]
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        try:
            wait_until(self._answers_or_died, timeout, message="redis-server to answer PING")
        except AssertionError:
            self.stop()
            raise
        if self._proc.poll() is not None:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise RuntimeError(f"redis-server exited {self._proc.returncode}:\n{log[-2000:]}")

    def stop(self) -> None:
        """Kill the server (no graceful shutdown: there is nothing to persist) and reap it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def restart(self, timeout: float = 10.0) -> None:
        """Kill and start again on the same socket and port; all data is lost."""
        self.stop()
        self.start(timeout)

    def _answers_or_died(self) -> bool:
        return self.is_running() or (self._proc is not None and self._proc.poll() is not None)


def blocked_in(server: RedisServer, command: str = "blmove") -> int:
    """How many clients are blocked in `command` right now (an idle worker waits in BLMOVE).

    CLIENT LIST's `cmd` is the last command a connection ran; only its `b` flag says that the
    connection is still blocked in it.
    """
    with server.client() as client:
        return sum(1 for c in client.client_list() if "b" in c["flags"] and c["cmd"] == command)
