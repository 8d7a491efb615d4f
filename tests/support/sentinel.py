"""A throwaway Sentinel deployment: one primary, its replicas and three sentinels on loopback.

Every process runs in the foreground as a child of the test (or of scripts/chaos.py), on a free
TCP port (sentinels hand out ip:port, so no unix sockets), without persistence, with a short
`down-after-milliseconds` so that a killed primary is replaced within a couple of seconds.
`failover()` is `SENTINEL FAILOVER` (a planned switch), `kill_primary()` a SIGKILL (an
unplanned one); both wait until the sentinels name the new primary and it accepts writes.

Import as ``from sentinel import SentinelSet`` (tests/support is on sys.path); the chaos script
imports it from this file too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from helpers import wait_until

SERVICE = "mymaster"
REDIS_SENTINEL = "/usr/bin/redis-sentinel"
# How long a silent primary is tolerated before the sentinels act. Not 1000: a sentinel pings
# every second at most, and after naming a new primary it may first reach it a second later,
# so with 1000 it sometimes judged a healthy new primary down and failed over once more.
DOWN_AFTER_MS = 2000


def sentinel_binary() -> str | None:
    """Debian's redis-sentinel (a link to redis-server that starts in sentinel mode), if any."""
    if os.access(REDIS_SENTINEL, os.X_OK):
        return REDIS_SENTINEL
    return shutil.which("redis-sentinel")


def _server_binary() -> str:
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SentinelSet:
    """`replicas` + 1 redis-servers and `sentinels` sentinels monitoring them as SERVICE."""

    def __init__(self, workdir: Path, replicas: int = 1, sentinels: int = 3) -> None:
        self.workdir = workdir
        self.server_ports = [_free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [_free_port() for _ in range(sentinels)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.on_new_primary: Callable[[], None] = lambda: None  # told when it accepts writes

    # -- what a config needs -----------------------------------------------------------------

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    @property
    def url(self) -> str:
        return f"redis+sentinel://{','.join(self.addresses)}/{SERVICE}/0"

    def toml(self, wait_replicas: int = 0, wait_timeout: float = 1.0) -> str:
        """The [redis] keys of a jobpool.toml that reaches this primary through the sentinels."""
        listed = ", ".join(f'"{a}"' for a in self.addresses)
        return (
            f"sentinels = [{listed}]\nservice_name = {SERVICE!r}\n"
            f"wait_replicas = {wait_replicas}\nwait_timeout = {wait_timeout}\n"
        )

    # -- life --------------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        primary = self.server_ports[0]
        for port in self.server_ports:
            self._spawn_server(port, None if port == primary else primary)
        for port in self.sentinel_ports:
            self._spawn_sentinel(port, primary)
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Until every sentinel agrees on a primary that accepts writes and has all its
        replicas online, and every sentinel knows every other."""
        wait_until(self._healthy, timeout, 0.1, "the sentinels to agree on a healthy primary")

    # -- failures ----------------------------------------------------------------------------

    def primary_port(self) -> int:
        """The primary's port as the sentinels name it now."""
        with self.sentinel(0) as s:
            _host, port = s.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def failover(self, timeout: float = 30.0, demote_old: bool = True) -> tuple[int, int]:
        """SENTINEL FAILOVER: a planned switch to a replica. Returns (old, new) primary ports
        once the new one accepts writes and the old one follows it; with `demote_old` False,
        at once, while the old one still takes writes that reach no replica (as a primary cut
        off by a partition does, until the sentinels reconfigure it)."""
        old = self.primary_port()
        wait_until(
            self._start_failover, timeout, message="the sentinels to accept SENTINEL FAILOVER"
        )
        new = wait_until(lambda: self._new_primary(old), timeout, 0.01, "the failover")
        self.on_new_primary()
        if not demote_old:
            return old, new
        # The sentinels turn the old primary into a replica at their next look (up to 10 s);
        # do it now, as they would, so that the set is whole again within a second or two.
        with contextlib.suppress(redis.RedisError), self.server(old) as client:
            client.replicaof("127.0.0.1", new)
        self.wait_healthy(timeout)
        return old, new

    def kill_primary(self, timeout: float = 30.0) -> tuple[int, int]:
        """SIGKILL the primary; once the sentinels promoted a replica, start the old one again
        (empty, as a lost host comes back) for them to turn into a replica."""
        old = self.primary_port()
        self.procs[old].kill()
        self.procs[old].wait(10)
        new = wait_until(
            lambda: self._new_primary(old), timeout, 0.01, "the sentinels to replace it"
        )
        self.on_new_primary()
        self._spawn_server(old, new)
        self.wait_healthy(timeout)
        return old, new

    def switches(self) -> list[tuple[float, float]]:
        """Every change of primary the sentinels made, read from their logs, each once:
        (when the new primary was named, when the old one was made its replica, or the same
        time if never). A chaos run tells the failovers it caused from the ones the sentinels
        made on their own (see DOWN_AFTER_MS), which it must count too. The old primary takes
        writes until it is made a replica, and no replica receives them."""
        named: list[tuple[float, int, int]] = []  # (when, old port, new port)
        demoted: list[tuple[float, int]] = []
        for port in self.sentinel_ports:
            with contextlib.suppress(OSError):
                for line in (self.workdir / f"sentinel-{port}.log").read_text().splitlines():
                    if m := _SWITCH.search(line):
                        named.append((_log_time(m["at"]), int(m["old"]), int(m["new"])))
                    elif m := _DEMOTED.search(line):
                        demoted.append((_log_time(m["at"]), int(m["port"])))
        switches: list[tuple[float, float]] = []
        last: tuple[float, int, int] | None = None
        for when, old, new in sorted(named):
            if last is not None and (old, new) == last[1:] and when - last[0] < 5:
                continue  # the same switch, logged by another sentinel
            last = (when, old, new)
            later = [t for t, p in demoted if p == old and when <= t <= when + 15]
            switches.append((when, min(later, default=when)))
        return switches

    # -- clients -----------------------------------------------------------------------------

    def server(self, port: int, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, **kwargs)

    def sentinel(self, index: int) -> redis.Redis:
        return self.server(self.sentinel_ports[index], decode_responses=True)

    def primary(self) -> redis.Redis:
        return self.server(self.primary_port())

    # -- inside --------------------------------------------------------------------------------

    def _spawn_server(self, port: int, primary: int | None) -> None:
        log = self.workdir / f"redis-{port}.log"
        argv = [_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.workdir), "--dbfilename", f"dump-{port}.rdb"]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(log)]
        argv += ["--hz", "100", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        if primary is not None:
            argv += ["--replicaof", "127.0.0.1", str(primary)]
        self.procs[port] = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        wait_until(lambda: _pings(self.server(port)), 10, message=f"redis-server on port {port}")

    def _spawn_sentinel(self, port: int, primary: int) -> None:
        binary = sentinel_binary()
        if binary is None:
            raise RuntimeError(
                "redis-sentinel is not installed (Debian: apt-get install redis-sentinel)"
            )
        conf = self.workdir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.workdir}\n"
            f"logfile {self.workdir / f'sentinel-{port}.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.procs[port] = subprocess.Popen([binary, str(conf)], stdin=subprocess.DEVNULL)
        wait_until(lambda: _pings(self.server(port)), 10, message=f"redis-sentinel on port {port}")

    def _start_failover(self) -> bool:
        """SENTINEL FAILOVER, until a sentinel accepts it: right after a previous failover they
        may not know a good replica yet (NOGOODSLAVE) or still be finishing it (INPROG)."""
        try:
            with self.sentinel(0) as s:
                s.execute_command("SENTINEL", "FAILOVER", SERVICE)
            return True
        except redis.ResponseError:
            return False

    def _new_primary(self, old: int) -> int | None:
        """The new primary's port once every sentinel names it and it accepts writes."""
        try:
            ports = set()
            for i in range(len(self.sentinel_ports)):
                with self.sentinel(i) as s:
                    ports.add(int(s.sentinel_get_master_addr_by_name(SERVICE)[1]))
            if len(ports) != 1 or old in ports:
                return None
            port = ports.pop()
            with self.server(port) as client:
                if client.info("replication")["role"] != "master":
                    return None
            return port
        except (redis.RedisError, TypeError):
            return None

    def _healthy(self) -> bool:
        try:
            ports = set()
            for i in range(len(self.sentinel_ports)):
                with self.sentinel(i) as s:
                    state = s.sentinel_master(SERVICE)
                    if state["num-other-sentinels"] < len(self.sentinel_ports) - 1:
                        return False
                    if state.get("flags") != "master":
                        return False
                    ports.add(int(state["port"]))
            if len(ports) != 1:
                return False
            with self.server(ports.pop()) as client:
                info = client.info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            return (
                info["role"] == "master"
                and len(online) == len(self.server_ports) - 1
                and all(r.get("state") == "online" for r in online)
            )
        except (redis.RedisError, KeyError, TypeError):
            return False


_AT = r"(?P<at>\d\d \w{3} \d{4} [\d:.]+)"  # a Redis log line's time: 01 Dec 2026 16:18:43.142
_SWITCH = re.compile(_AT + r" # \+switch-master \S+ \S+ (?P<old>\d+) \S+ (?P<new>\d+)")
_DEMOTED = re.compile(_AT + r" \* \+convert-to-slave \S+ \S+ \S+ (?P<port>\d+) @")


def _log_time(text: str) -> float:
    """A Redis log line's local time as a Unix time."""
    return datetime.strptime(text, "%d %b %Y %H:%M:%S.%f").timestamp()


def _pings(client: redis.Redis) -> bool:
    try:
        with client:
            return bool(client.ping())
    except redis.RedisError:
        return False
