"""A throwaway Redis Cluster: three primaries, each with a replica, on loopback ports.

Built by hand (CLUSTER ADDSLOTS, MEET, REPLICATE) rather than with `redis-cli --cluster
create`, so that it needs nothing but redis-server and says what it waits for. Each node runs
in the foreground as a child of the test process, with a short `cluster-node-timeout` so that a
killed primary is replaced within a couple of seconds. Ports stay at or below 55535: a node's
cluster bus listens 10000 above its port.

Import as ``from cluster import Cluster`` (tests/support is on sys.path).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import redis
import redis.cluster
from helpers import wait_until

from jobpool.drivers.redis.embedded import find_redis_server

SLOTS = 16384
NODE_TIMEOUT_MS = 1000  # how long a primary may be silent before the others fail it over


class Cluster:
    """`masters` primaries sharing the slots evenly, each followed by `replicas` replicas."""

    def __init__(self, workdir: Path, masters: int = 3, replicas: int = 1) -> None:
        self.workdir = workdir
        self.masters, self.replicas = masters, replicas
        self.ports = _cluster_ports(masters * (1 + replicas))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    # -- life --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """A redis:// URL of one node: enough for a cluster client to find all of them."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 30.0) -> None:
        for port in self.ports:
            self._spawn(port)
        nodes = [self.node(port) for port in self.ports]
        wait_until(lambda: all(_pings(n) for n in nodes), timeout, 0.05, "cluster nodes to answer")
        primaries = self.ports[: self.masters]
        share = SLOTS // self.masters
        for i, port in enumerate(primaries):
            last = SLOTS - 1 if i == self.masters - 1 else (i + 1) * share - 1
            self.node(port).execute_command("CLUSTER", "ADDSLOTS", *range(i * share, last + 1))
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        wait_until(self._all_know_all, timeout, 0.05, "every node to know every other")
        ids = {port: self.node_id(port) for port in primaries}
        for i, port in enumerate(self.ports[self.masters :]):
            primary = primaries[i % self.masters]
            self.node(port).execute_command("CLUSTER", "REPLICATE", ids[primary])
        self.wait_healthy(timeout)
        wait_until(self._replicas_in_sync, timeout, 0.05, "every replica to sync")
        for n in nodes:
            n.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)

    def flush(self) -> None:
        """Empty every primary (replicas follow); fail over back is not needed for this."""
        for port in self.primaries():
            with self.node(port) as n:
                n.flushall()

    # -- what the tests look at ----------------------------------------------------------------

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster.from_url(self.url, **{"socket_timeout": 5, **kwargs})

    def node(self, port: int) -> redis.Redis:
        """A plain client of one node."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def node_id(self, port: int) -> str:
        with self.node(port) as n:
            return str(n.execute_command("CLUSTER", "MYID").decode())

    def primaries(self) -> list[int]:
        """The ports of the primaries that serve slots now (CLUSTER SLOTS of a live node)."""
        with self.node(self._live_port()) as n:
            return sorted({int(s[2][1]) for s in n.execute_command("CLUSTER", "SLOTS")})

    def primary_of(self, key: str) -> int:
        """The port of the primary that serves `key`'s slot."""
        with self.node(self._live_port()) as n:
            slot = int(n.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in n.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(primary[1])
        raise AssertionError(f"no node serves slot {slot}")

    def spread_queues(self, count: int, prefix: str = "jobpool") -> list[str]:
        """`count` queue names whose slots fall on the primaries in turn (q0, q1, ... kept
        when their primary is the next one due), so that every node serves some."""
        primaries, names, i = self.primaries(), [], 0
        while len(names) < count:
            name = f"q{i}"
            if (
                self.primary_of(f"{prefix}:{{{name}}}:ready")
                == primaries[len(names) % len(primaries)]
            ):
                names.append(name)
            i += 1
        return names

    def replica_of(self, primary: int) -> int:
        """The port of a live replica of `primary`."""
        wanted = self.node_id(primary)
        for port in self._alive():
            if port == primary:
                continue
            with self.node(port) as n:
                for line in _nodes(n):
                    if line["myself"] and line["master_id"] == wanted:
                        return port
        raise AssertionError(f"no live replica of {primary}")

    def failover(self, primary: int, timeout: float = 30.0) -> int:
        """A manual failover of `primary` to its replica (CLUSTER FAILOVER on the replica: it
        waits until it has every write of the primary, so nothing is lost); the new primary's
        port once every node agrees."""
        replica = self.replica_of(primary)
        with self.node(replica) as n:
            n.execute_command("CLUSTER", "FAILOVER")
        wait_until(lambda: self._role(replica) == "master", timeout, 0.05, "the replica to lead")
        self.wait_healthy(timeout)
        return replica

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a host that loses power."""
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def wait_replaced(self, primary: int, timeout: float = 30.0) -> int:
        """After a kill of `primary`: until a replica serves its slots and the cluster is
        healthy; the new primary's port."""
        before = set(self.primaries()) - {primary}
        wait_until(
            lambda: self._answers() and primary not in self.primaries(),
            timeout,
            0.05,
            f"a replica to replace {primary}",
        )
        self.wait_healthy(timeout)
        [new] = set(self.primaries()) - before
        return new

    def _answers(self) -> bool:
        try:
            self.primaries()
        except redis.RedisError:
            return False
        return True

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every live node reports cluster_state:ok and agrees on who serves the slots."""

        def healthy() -> bool:
            views = set()
            for port in self._alive():
                try:
                    with self.node(port) as n:
                        if b"cluster_state:ok" not in n.execute_command("CLUSTER", "INFO"):
                            return False
                        slots = n.execute_command("CLUSTER", "SLOTS")
                except redis.RedisError:
                    return False
                views.add(tuple(sorted((s[0], s[1], s[2][1]) for s in slots)))
            return len(views) == 1

        wait_until(healthy, timeout, 0.05, "the cluster to be healthy")

    # -- inside ------------------------------------------------------------------------------

    def _spawn(self, port: int) -> None:
        argv = [cluster_server(), "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
        argv += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
        # A replica may take over however long ago it last heard from its primary: an idle
        # test cluster's replicas are always "stale" by Redis's default measure.
        argv += ["--cluster-replica-validity-factor", "0"]
        argv += ["--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not after 5 s
        argv += ["--dir", str(self.workdir), "--save", "", "--appendonly", "no", "--hz", "100"]
        argv += ["--daemonize", "no", "--logfile", str(self.workdir / f"node-{port}.log")]
        self.procs[port] = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def _replicas_in_sync(self) -> bool:
        for port in self.ports[self.masters :]:
            with self.node(port) as n:
                if n.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def _alive(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def _live_port(self) -> int:
        return self._alive()[0]

    def _all_know_all(self) -> bool:
        for port in self.ports:
            with self.node(port) as n:
                lines = _nodes(n)
                if len(lines) < len(self.ports) or any(line["handshake"] for line in lines):
                    return False
        return True

    def _role(self, port: int) -> str:
        with self.node(port) as n:
            return next(line["role"] for line in _nodes(n) if line["myself"])


def cluster_server() -> str:
    """The redis-server the Cluster tests run: $JOBPOOL_CLUSTER_SERVER, else the one on PATH
    (Debian's redis-server 7, as in CI), else the embedded one."""
    return (
        os.environ.get("JOBPOOL_CLUSTER_SERVER")
        or shutil.which("redis-server")
        or (find_redis_server())
    )


def _nodes(n: redis.Redis) -> list[dict[str, Any]]:
    """CLUSTER NODES, one dict per line (redis-py's own parser differs between versions)."""
    raw = n.execute_command("CLUSTER", "NODES")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out = []
    for row in text.strip().splitlines():
        parts = row.split()
        flags = parts[2].split(",")
        out.append(
            {
                "id": parts[0],
                "port": int(parts[1].split("@")[0].rsplit(":", 1)[1]),
                "flags": flags,
                "myself": "myself" in flags,
                "role": "master" if "master" in flags else "replica",
                "master_id": parts[3],
                "handshake": "handshake" in flags or "noaddr" in flags,
            }
        )
    return out


def _pings(n: redis.Redis) -> bool:
    try:
        return bool(n.ping())
    except redis.RedisError:
        return False


def _cluster_ports(count: int) -> list[int]:
    """`count` free ports, each with its bus port (10000 above it) free too, all ≤ 55535."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45535)
        if port in ports or port + 10000 in ports or port - 10000 in ports:
            continue
        if all(_free(p) for p in (port, port + 10000)):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
