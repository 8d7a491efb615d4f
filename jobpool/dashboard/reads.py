"""What the dashboard shows, read from Redis: plain dicts and lists, no HTML.

Every read goes through the RedisDriver (its stats, records and bodies) or the history hashes
(drivers/redis/history.py); nothing here writes. Lists of delayed, retrying and failed jobs
page through their sorted set a chunk at a time and keep the records that match the filters,
so a filter on a huge queue costs at most SCAN_LIMIT records per page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobpool.config import Config
from jobpool.drivers.redis import RedisDriver
from jobpool.drivers.redis import history as h
from jobpool.drivers.redis.scripts import WAKE
from jobpool.ids import queue_of
from jobpool.names import check_queue_name

PAGE_SIZE = 50
SCAN_CHUNK = 500  # ids read from a sorted set at a time, when a list is filtered
SCAN_LIMIT = 20_000  # most ids one page of a filtered list looks at
SPANS = {"1h": (60, 1), "24h": (1440, 15)}  # minutes shown, minutes per point
METRIC_SPANS = {"1h": ("m", 60), "24h": ("h", 24), "7d": ("h", 168)}  # resolution, periods
LONG_CACHE = 20.0  # seconds a 24 h series is kept (it changes by one point per 15 minutes)
LISTS = ("delayed", "retrying", "failed")


@dataclass
class _Scan:
    """A filtered walk through delayed or failed jobs: what it wants, what it saw."""

    kind: str  # delayed, retrying or failed: the status wanted
    job_class: str | None
    total: int = 0
    scanned: int = 0
    classes: set[str] = field(default_factory=set)

    def wants(self, record: dict[str, Any]) -> bool:
        if record.get("status") != self.kind:
            return False
        self.classes.add(str(record.get("job", "?")))
        return not self.job_class or record.get("job") == self.job_class


@dataclass
class Listing:
    """One page of a list of jobs: its rows (records, each with `arguments`), whether more
    follow, and what was looked at."""

    rows: list[dict[str, Any]]
    page: int
    more: bool
    total: int  # jobs in the sorted set(s), before filters
    scanned_all: bool = True
    classes: list[str] = field(default_factory=list)


class Reads:
    def __init__(self, config: Config, driver: RedisDriver, clock: Callable[[], float] = time.time):
        self.config = config
        self.driver = driver
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def _client(self) -> Any:
        """The Redis client, untyped: redis-py's reply types are unions of every reply."""
        return self.driver.client

    # -- queues --------------------------------------------------------------------------------

    def queues(self) -> list[str]:
        """The configured queues, then any other that holds jobs in Redis (as `jobpool stats`)."""
        from jobpool.unserved import served_queues

        served = served_queues(self.config)
        stored = [q for q in self.driver.stored_queues() if q not in served and _is_queue(q)]
        return served + stored

    def overview(self) -> list[dict[str, Any]]:
        """Each queue's figures, as `jobpool stats --json` gives them."""
        from jobpool.unserved import served_queues

        served = set(served_queues(self.config))
        rows = []
        for queue in self.queues():
            numbers = self.driver.stats(queue)
            numbers["name"] = queue
            numbers["paused"] = self.driver.is_paused(queue)
            numbers["unserved"] = queue not in served and not numbers["workers"]
            rows.append(numbers)
        return rows

    # -- charts --------------------------------------------------------------------------------

    def series(self, queue: str | None, span: str) -> dict[str, Any]:
        """Points of a chart: per minute (1 h) or per 15 minutes (24 h), of one queue or all
        of them, oldest first: completed, failed and retried attempts, run-time p50 and p95."""
        minutes, step = SPANS[span]
        cached = self._cache.get((queue or "", span))
        now = self.clock()
        if step > 1 and cached is not None and now - cached[0] < LONG_CACHE:
            return cached[1]
        first, last = h.recent_minutes(now, minutes)
        first -= first % step  # points on whole steps
        queues = [queue] if queue else self.queues()
        totals: list[h.Tally] = [h.Tally() for _ in range((last - first) // step + 1)]
        for name in queues:
            periods = h.read(self.driver.client, self.driver.keys(name), "m", first, last)
            for i, period in enumerate(periods):
                totals[i // step].add(period.total)
        points = []
        for i, tally in enumerate(totals):
            points.append(
                {
                    "t": (first + i * step) * h.MINUTE,
                    "completed": tally.outcomes.get("completed", 0),
                    "failed": tally.outcomes.get("failed", 0),
                    "retried": tally.outcomes.get("retrying", 0),
                    "p50": tally.runtime(0.5),
                    "p95": tally.runtime(0.95),
                }
            )
        out = {"queue": queue, "span": span, "step": step * h.MINUTE, "points": points}
        if step > 1:
            self._cache[(queue or "", span)] = (now, out)
        return out

    def metrics(self, span: str) -> list[dict[str, Any]]:
        """Per queue and job class over the span: attempts, failures, run-time percentiles."""
        resolution, count = METRIC_SPANS[span]
        now = self.clock()
        last = int(now // h.SPAN[resolution])
        rows = []
        for queue in self.queues():
            periods = h.read(
                self.driver.client, self.driver.keys(queue), resolution, last - count + 1, last
            )
            _, classes = h.add_up(periods)
            for job_class, tally in sorted(classes.items()):
                attempts = tally.count
                if not attempts:
                    continue
                failed = tally.outcomes.get("failed", 0)
                rows.append(
                    {
                        "queue": queue,
                        "job_class": job_class,
                        "attempts": attempts,
                        "completed": tally.outcomes.get("completed", 0),
                        "failed": failed,
                        "retried": tally.outcomes.get("retrying", 0),
                        "failure_rate": failed / attempts,
                        "mean": tally.micros / attempts / 1e6,
                        "p50": tally.runtime(0.5),
                        "p95": tally.runtime(0.95),
                        "p99": tally.runtime(0.99),
                    }
                )
        return rows

    # -- one job -------------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        """A job's record, its arguments and result decoded, where it waits, and its timeline;
        None when there is no such job (or its record expired)."""
        record = self.driver.status(job_id)
        if record is None:
            return None
        queue = str(record.get("queue") or queue_of(job_id))
        [body] = self.driver.payloads(queue, [job_id])
        return {
            "record": record,
            "queue": queue,
            "job_name": _body(body).get("job"),
            "arguments": _body(body).get("attrs"),
            "result": _json(record.get("result")),
            "position": self._position(queue, job_id, record),
            "timeline": timeline(record),
            "attempt_errors": record.get("errors") or [],
        }

    def _position(self, queue: str, job_id: str, record: dict[str, Any]) -> int | None:
        """How many jobs are ahead of a queued one in the ready list; None if it is not there."""
        if record.get("status") != "queued":
            return None
        k, client = self.driver.keys(queue), self._client()
        index = client.lpos(k.ready, job_id)
        if index is None:
            return None
        tokens = client.lpos(k.ready, WAKE, count=0, maxlen=int(index) + 1) or []
        return int(index) - len(tokens)

    # -- lists ---------------------------------------------------------------------------------

    def listing(self, kind: str, queue: str | None, job_class: str | None, page: int) -> Listing:
        """A page of delayed (due first), retrying (due first) or failed jobs (latest first),
        of one queue or all, of one job class or all."""
        queues = [queue] if queue else self.queues()
        scan = _Scan(kind, job_class)
        skip, more = page * PAGE_SIZE, False
        rows: list[dict[str, Any]] = []
        for name in queues:
            for record in self._scan(name, scan):
                if skip:
                    skip -= 1
                elif len(rows) < PAGE_SIZE:
                    rows.append(record)
                else:
                    more = True
                    break
            if more:
                break
        self._add_arguments(rows)
        classes = sorted(scan.classes)
        return Listing(rows, page, more, scan.total, scan.scanned < SCAN_LIMIT, classes)

    def _scan(self, queue: str, scan: _Scan) -> Iterator[dict[str, Any]]:
        """The records of a queue's sorted set that match, a chunk at a time, in order."""
        k, client = self.driver.keys(queue), self._client()
        zset = k.failed if scan.kind == "failed" else k.delayed
        scan.total += int(client.zcard(zset))
        read = client.zrevrange if scan.kind == "failed" else client.zrange
        start = 0
        while scan.scanned < SCAN_LIMIT:
            chunk = read(zset, start, start + SCAN_CHUNK - 1, withscores=True)
            if not chunk:
                return
            start += len(chunk)
            scan.scanned += len(chunk)
            ids = [member.decode() for member, _ in chunk]
            raws = client.hmget(k.state, ids)
            for job_id, (_, score), raw in zip(ids, chunk, raws, strict=True):
                record = _record(raw)
                if record is not None and scan.wants(record):
                    yield {**_public(job_id, record), "score": score / 1000.0}

    def _add_arguments(self, rows: list[dict[str, Any]]) -> None:
        by_queue: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_queue.setdefault(str(row.get("queue") or queue_of(row["id"])), []).append(row)
        for queue, group in by_queue.items():
            bodies = self.driver.payloads(queue, [row["id"] for row in group])
            for row, body in zip(group, bodies, strict=True):
                row["arguments"] = _body(body).get("attrs")

    # -- hosts ---------------------------------------------------------------------------------

    def hosts(self) -> dict[str, Any]:
        """Masters and their workers, from the host registry (every `jobpool start` beats
        there), and the workers that hold a lease on a queue, standalone ones included (their
        ids read `HOST.MASTER_PID.SLOT.N`; a standalone worker's `HOST.PID.RANDOM`)."""
        return {"registry": self._registry(), "leases": self._leases(), "now": self.clock()}

    def _registry(self) -> list[dict[str, Any]]:
        """Every master's heartbeat (supervisor/registry.py), without the Redis address: a
        page never shows it, password masked or not."""
        from jobpool.supervisor.registry import list_hosts

        hosts = list_hosts(self.driver)
        for host in hosts:
            host.pop("redis", None)
            host["workers"] = [w for w in host.get("workers") or [] if isinstance(w, dict)]
        return hosts

    def _leases(self) -> list[dict[str, Any]]:
        now_ms = self.clock() * 1000
        rows = []
        for queue in self.queues():
            k = self.driver.keys(queue)
            for member, deadline in self._client().zrange(k.workers, 0, -1, withscores=True):
                worker = member.decode(errors="replace")
                host, _, rest = worker.partition(".")
                pid, _, slot = rest.partition(".")
                rows.append(
                    {
                        "queue": queue,
                        "worker": worker,
                        "host": host,
                        "pid": pid,
                        "slot": slot.rpartition(".")[0] or slot,
                        "lease_left": (deadline - now_ms) / 1000.0,
                        "alive": deadline >= now_ms,
                        "holds": int(self._client().llen(k.wip(worker))),
                    }
                )
        return rows


def timeline(record: dict[str, Any]) -> list[tuple[float, str]]:
    """The moments of a job's life that its record keeps, in order: (unix time, what)."""
    events: list[tuple[float, str]] = []
    status = record.get("status")
    if record.get("created_at"):
        events.append((record["created_at"], "pushed"))
    for entry in record.get("errors") or []:
        if isinstance(entry, dict) and entry.get("at"):
            at = float(entry["at"])  # seconds, as public_record gives them
            events.append(
                (at, f"attempt {entry.get('attempt', '?')} failed: {entry.get('error', '')}")
            )
    if record.get("started_at"):
        events.append((record["started_at"], f"attempt {record.get('attempts', '?')} started"))
    if record.get("due_at") and status in ("delayed", "retrying"):
        events.append((record["due_at"], "due" if status == "delayed" else "next attempt due"))
    if record.get("cancel_requested_at"):
        events.append((record["cancel_requested_at"], "asked to stop"))
    if record.get("finished_at"):
        events.append((record["finished_at"], str(status)))
    return sorted(events, key=lambda e: e[0])


def _is_queue(name: str) -> bool:
    """False for the hash tags of keys that are not a queue's (the host registry's `~hosts`)."""
    try:
        check_queue_name(name)
    except ValueError:
        return False
    return True


def _record(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _public(job_id: str, record: dict[str, Any]) -> dict[str, Any]:
    from jobpool.drivers.base import public_record

    return public_record(job_id, record)


def _body(body: bytes | None) -> dict[str, Any]:
    """A stored body decoded ({} when gone or damaged): `job` (registered name), `attrs`."""
    decoded = _json(body)
    return decoded if isinstance(decoded, dict) else {}


def _json(raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, (bytes, str)):
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return raw
