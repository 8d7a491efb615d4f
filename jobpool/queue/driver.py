"""The Redis driver: every state change is one Lua script (see lua/), run on the server's clock."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

import redis

from jobpool.driver import Delivery, Fetched, Outcome, public_record
from jobpool.ids import queue_of
from jobpool.queue import scripts as s
from jobpool.queue.keys import QueueKeys
from jobpool.queue.parse import RETRY_CODES, ms, parse_fetch
from jobpool.queue.session import RedisSession
from jobpool.queue.waiter import Waiter

ENQUEUE_CHUNK = 1000  # jobs per script call: keeps each call short for the server
_compact = json.JSONEncoder(separators=(",", ":")).encode


class RedisDriver:
    """Queues in Redis, shared by every worker on every host that uses the same prefix."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "jobpool",
        completed_ttl: float = 86400.0,
        failed_ttl: float = 7 * 86400.0,
        promote_batch: int = 1000,
    ):
        self.client = client
        self.prefix = prefix
        self.completed_ttl_ms = ms(completed_ttl)
        self.failed_ttl_ms = ms(failed_ttl)
        self.promote_batch = promote_batch
        self.scripts = s.Scripts(client)
        self._keys: dict[str, QueueKeys] = {}
        self._waiter: Waiter | None = None

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = QueueKeys(self.prefix, queue)
        return k

    def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int:
        keys, delay_ms = s.enqueue_keys(self.keys(queue)), ms(delay)
        if len(jobs) <= ENQUEUE_CHUNK:
            return self.scripts.run("enqueue", keys, _enqueue_args(delay_ms, jobs))
        with self.client.pipeline(transaction=False) as pipe:
            for i in range(0, len(jobs), ENQUEUE_CHUNK):
                chunk = jobs[i : i + ENQUEUE_CHUNK]
                self.scripts.run("enqueue", keys, _enqueue_args(delay_ms, chunk), client=pipe)
            return sum(pipe.execute())

    def fetch(self, queue: str, worker_id: str, count: int = 1, lease: float = 30.0) -> Fetched:
        keys = s.fetch_keys(self.keys(queue), worker_id)
        out = self.scripts.run("fetch", keys, [worker_id, count, ms(lease), self.promote_batch])
        return parse_fetch(out, queue, worker_id)

    def session(self) -> RedisSession:
        """A worker's own connection for claims and acks (see RedisSession)."""
        return RedisSession(self)

    def wait(self, queue: str, timeout: float, wakeup_fd: int | None = None) -> None:
        if self._waiter is None:
            self._waiter = Waiter(self.client)
        self._waiter.wait(self.keys(queue).ready, timeout, wakeup_fd)

    def complete(self, delivery: Delivery) -> bool:
        keys = s.ack_keys(self.keys(delivery.queue), delivery.worker_id)
        args = [self.completed_ttl_ms, 10, "", delivery.worker_id, delivery.id]
        acked = self.scripts.run("ack", keys, args)
        return acked[0] == 1

    def retry_or_fail(
        self,
        delivery: Delivery,
        delay: float,
        error: str,
        traceback: str,
        force_fail: bool = False,
    ) -> Outcome:
        keys = s.retry_or_fail_keys(self.keys(delivery.queue), delivery.worker_id)
        args = [delivery.id, ms(delay), error, traceback, self.failed_ttl_ms, int(force_fail)]
        return RETRY_CODES[self.scripts.run("retry_or_fail", keys, args)]

    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int:
        keys = s.release_keys(self.keys(queue), worker_id)
        return self.scripts.run("release", keys, [worker_id, *job_ids])

    def requeue_worker(
        self,
        queue: str,
        worker_id: str,
        reason: str,
        only_if_expired: bool = False,
        count_attempt: bool = True,
    ) -> int:
        keys = s.requeue_keys(self.keys(queue), worker_id)
        args = [worker_id, reason, self.failed_ttl_ms, int(only_if_expired), int(count_attempt)]
        return self.scripts.run("requeue", keys, args)

    def renew(self, queue: str, worker_ids: Sequence[str], lease: float) -> None:
        if worker_ids:
            self.scripts.run("renew", s.renew_keys(self.keys(queue)), [ms(lease), *worker_ids])

    def status(self, job_id: str) -> dict[str, Any] | None:
        try:
            queue = queue_of(job_id)
        except ValueError:
            return None
        raw = self.client.hget(self.keys(queue).state, job_id)
        if raw is None:
            return None
        record = json.loads(raw)
        if record.get("expires_at", math.inf) <= time.time() * 1000:
            return None  # past its time to live; pruned at the next chance
        return public_record(job_id, record)

    def counts(self, queue: str) -> dict[str, int]:
        k = self.keys(queue)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.llen(k.ready).zcard(k.delayed).zcard(k.failed).zrange(k.workers, 0, -1)
            ready, delayed, failed, workers = pipe.execute()
            for worker in workers:
                pipe.llen(k.wip(worker.decode()))
            in_flight = sum(pipe.execute()) if workers else 0
        return {"ready": ready, "delayed": delayed, "in_flight": in_flight, "failed": failed}

    def stats(self, queue: str) -> dict[str, Any]:
        """counts() plus live workers, jobs finished in about the last minute (10 s buckets)
        and the age in seconds of the oldest job waiting (None when none waits)."""
        k = self.keys(queue)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.time().zrange(k.workers, 0, -1, withscores=True).lrange(k.ready, 0, 1)
            pipe.hgetall(k.stats)
            (sec, usec), workers, head, buckets = pipe.execute()
        now_ms = sec * 1000 + usec // 1000
        out: dict[str, Any] = dict(self.counts(queue))
        out["workers"] = sum(1 for _, deadline in workers if deadline >= now_ms)
        recent = now_ms // 10_000 - 5  # the current bucket and the five before: ~a minute
        for kind in ("done", "failed"):
            out[f"{kind}_last_minute"] = sum(
                int(n)
                for field, n in buckets.items()
                if field.startswith(kind.encode()) and int(field.rsplit(b":", 1)[1]) >= recent
            )
        out["oldest_waiting_age"] = self._oldest_age(k, [i for i in head if i != b"~wake"], now_ms)
        return out

    def _oldest_age(self, k: QueueKeys, head: list[bytes], now_ms: int) -> float | None:
        raw = self.client.hget(k.state, head[0]) if head else None
        if raw is None:
            return None
        record = json.loads(raw)
        since = max(record.get("created_at", now_ms), record.get("due_at", 0))
        return max(now_ms - since, 0) / 1000.0

    def failed_jobs(self, queue: str, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
        k = self.keys(queue)
        ids = [i.decode() for i in self.client.zrange(k.failed, start, start + count - 1)]
        raws = self.client.hmget(k.state, ids) if ids else []
        pairs = zip(ids, raws, strict=True)
        return [public_record(i, json.loads(r)) for i, r in pairs if r is not None]

    def retry_failed(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        keys = s.retry_failed_keys(self.keys(queue))
        args = [10_000, "*"] if job_ids is None else [0, *job_ids]
        return self.scripts.run("retry_failed", keys, args)

    def delete(self, job_id: str) -> bool:
        keys = s.delete_keys(self.keys(queue_of(job_id)))
        code = self.scripts.run("delete", keys, [job_id])
        if code < 0:
            raise ValueError(f"job {job_id} is being processed; delete it after it finishes")
        return code == 1

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.close()
        self.client.close()


def _enqueue_args(delay_ms: int, jobs: Sequence[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    args: list[Any] = [delay_ms]
    for job_id, body, record in jobs:
        args += (job_id, body, _compact(record))
    return args
