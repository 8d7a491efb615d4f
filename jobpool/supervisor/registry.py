"""The host registry: every `jobpool start` master says in Redis who it is and what its workers do,
so that `jobpool stats`, the dashboard and an operator see every host that serves the queues.

Like Sidekiq's process heartbeat: each master writes one JSON value (host, pid, config path,
queues, worker count, each worker's state and job, started at, version) under a key of its own
that expires `TTL` seconds after its last beat, so a master that dies without a word (SIGKILL,
a lost host) disappears within TTL; a master that stops cleanly deletes its key at once. Keys
(one hash tag, so that they live on one Cluster node and MGET works there too; `~` cannot start
a queue name, so no queue's keys collide with them):

    PREFIX:{~hosts}:index        SET     the ids (HOST.PID) of masters that have beaten
    PREFIX:{~hosts}:master:ID    STRING  that master's JSON, EX TTL

`list_hosts()` is the read API (the dashboard's); it drops from the index the ids whose key has
expired. Beats run from the master loop (`Registry.beat(now)`, at most every BEAT seconds), and
a beat that fails (Redis away, or refusing) is only logged: the registry is for people, and must
never stop the master.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
import redis

from jobpool.drivers.redis.client import CONNECTION_ERRORS

if TYPE_CHECKING:
    from jobpool.supervisor.children import Child

log = logging.getLogger("jobpool.supervisor")
BEAT = 5.0  # seconds between heartbeats
TTL = 30.0  # seconds a master stays listed after its last beat


def index_key(prefix: str) -> str:
    return f"{prefix}:{{~hosts}}:index"


def master_key(prefix: str, master_id: str) -> str:
    return f"{prefix}:{{~hosts}}:master:{master_id}"


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as the registry shows it."""

    slot: str
    queue: str
    pid: int
    state: str  # starting, idle, busy, draining (Child.state)
    jobs: tuple[str, ...]  # the ids of the jobs it runs now
    started_at: float  # unix time
    job_started_at: tuple[float, ...] = ()  # unix time each of `jobs` started
    jobs_done: int = 0  # jobs it finished (any outcome) since it started
    rss: int | None = None  # bytes, None when it could not be read
    restarts: tuple[tuple[float, str], ...] = ()  # its slot's recent restarts: (unix time, why)


class Registry:
    """One master's entry: `beat()` from its loop, `remove()` when it stops."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        *,
        host: str,
        pid: int,
        config_path: str,
        version: str,
        redis_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.id = f"{host}.{pid}"
        self.clock = clock
        self.static = {
            "id": self.id,
            "host": host,
            "pid": pid,
            "config": config_path,
            "version": version,
            "redis": redis_url,
            "started_at": round(clock(), 3),
        }
        self.next_beat = 0.0  # time.monotonic() of the next beat
        self._failing = False
        self._shown: tuple[Any, ...] = ()  # the workers as the last beat showed them

    def due(self, now: float) -> bool:
        return now >= self.next_beat

    def beat(
        self, now: float, queues: Sequence[str], workers: Sequence[WorkerInfo], state: str
    ) -> None:
        """Write this master's entry when a beat is due at `now` (time.monotonic()), or sooner
        (at most once a second) when its workers changed: started, exited, took a job."""
        changed = tuple((w.pid, w.state, w.jobs) for w in workers) != self._shown
        if not self.due(now) and not (changed and now >= self.next_beat - BEAT + 1.0):
            return
        self.next_beat = now + BEAT
        self._shown = tuple((w.pid, w.state, w.jobs) for w in workers)
        entry = {
            **self.static,
            "state": state,
            "queues": list(queues),
            "worker_count": len(workers),
            "workers": [
                {
                    "slot": w.slot,
                    "queue": w.queue,
                    "pid": w.pid,
                    "state": w.state,
                    "job": w.jobs[0] if len(w.jobs) == 1 else (list(w.jobs) or None),
                    "job_started_at": [round(t, 3) for t in w.job_started_at],
                    "started_at": round(w.started_at, 3),
                    "jobs_done": w.jobs_done,
                    "rss": w.rss,
                    "restarts": [{"at": round(t, 3), "reason": why} for t, why in w.restarts],
                }
                for w in workers
            ],
            "beat_at": round(self.clock(), 3),
        }
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(master_key(self.prefix, self.id), json.dumps(entry), px=int(TTL * 1000))
            pipe.sadd(index_key(self.prefix), self.id)
            pipe.execute()
        except (*CONNECTION_ERRORS, redis.ResponseError) as exc:
            if not self._failing:
                log.warning("cannot write this master's heartbeat to Redis (%s); will retry", exc)
            self._failing = True
            return
        self._failing = False

    def remove(self) -> None:
        """Leave the registry at once (a clean stop)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(master_key(self.prefix, self.id))
            pipe.srem(index_key(self.prefix), self.id)
            pipe.execute()
        except (*CONNECTION_ERRORS, redis.ResponseError):
            pass  # the key expires by itself


def list_hosts(driver: Any) -> list[dict[str, Any]]:
    """Every master whose heartbeat has not expired, sorted by host and pid: the JSON each
    wrote (see Registry.beat) plus `age`, the seconds since its last beat. [] for a driver
    without Redis (the memory driver has no masters)."""
    client, prefix = getattr(driver, "client", None), getattr(driver, "prefix", None)
    if client is None or prefix is None:
        return []
    ids = sorted(member.decode() for member in client.smembers(index_key(prefix)))
    if not ids:
        return []
    values = client.mget([master_key(prefix, i) for i in ids])
    gone = [i for i, value in zip(ids, values, strict=True) if value is None]
    if gone:
        client.srem(index_key(prefix), *gone)
    now = time.time()
    hosts = []
    for value in values:
        if value is not None:
            entry = json.loads(value)
            entry["age"] = round(max(now - entry.get("beat_at", now), 0.0), 3)
            hosts.append(entry)
    return sorted(hosts, key=lambda e: (str(e.get("host")), int(e.get("pid", 0))))


def registry_for(
    driver: Any, config_path: str, host: str, pid: int, redis_url: str
) -> Registry | None:
    """The registry of a master on `driver`; None without Redis (nothing to register in)."""
    client, prefix = getattr(driver, "client", None), getattr(driver, "prefix", None)
    if client is None or prefix is None:
        return None
    from jobpool import __version__

    return Registry(
        client,
        prefix,
        host=host,
        pid=pid,
        config_path=os.path.abspath(config_path),
        version=__version__,
        redis_url=redis_url,
    )


def workers_of(
    children: Iterable[Child],
    now: float,
    restarts: Mapping[str, Sequence[tuple[float, str]]] | None = None,
) -> list[WorkerInfo]:
    """What the registry says of a master's children (`now`: time.monotonic()); `restarts`:
    each slot's recent restarts (unix time, reason)."""
    wall = time.time()
    infos = []
    for child in sorted(children, key=lambda c: c.slot.name):
        running = child.running
        infos.append(
            WorkerInfo(
                slot=child.slot.name,
                queue=child.slot.queue,
                pid=child.pid,
                state=child.state,
                jobs=tuple(job.job_id for job in running),
                started_at=wall - (now - child.started),
                job_started_at=tuple(wall - (now - job.started) for job in running),
                jobs_done=sum(child.outcomes.values()),
                rss=_rss(child.pid),
                restarts=tuple((restarts or {}).get(child.slot.name, ())),
            )
        )
    return infos


def _rss(pid: int) -> int | None:
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return None
