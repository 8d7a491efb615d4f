"""The in-memory driver: one process, no Redis, for unit tests of code that pushes jobs.

It keeps the Redis driver's promises (states, attempts, retries with backoff, delayed jobs, time
to live) in plain dicts guarded by one lock. The clock is injectable so tests can move time.
"""

from __future__ import annotations

import bisect
import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from jobpool import defaults
from jobpool.drivers.base import (
    FINISHED,
    HOOK_PENDING,
    HOOK_STARTED,
    WAITING_OR_RUNNING,
    Cancel,
    Requeued,
    TickClaim,
    cancel_requested,
    public_record,
    stop_requested,
)
from jobpool.drivers.memory.flows import flow_outcome
from jobpool.ids import queue_of
from jobpool.workflows.plan import FlowPlan, flow_field
from jobpool.workflows.status import KINDS, flow_status, related_ids

RECHECK = 1.0  # seconds between looks at a waited-for record (a cancel or delete wakes no one)

if TYPE_CHECKING:
    from jobpool.drivers.memory.session import MemoryAsync, MemorySession


ERRORS_KEPT = 10  # as common.lua's note_error
TRACEBACK_KEPT = 2000


def note_error(record: dict[str, Any], error: str, traceback: str | None, now: int) -> None:
    """An attempt's error, as the job's `error` and `traceback` and in its `errors` (the last
    ERRORS_KEPT attempts'), as lua/includes/common.lua's note_error records it."""
    record.update(error=error, traceback=traceback)
    entry: dict[str, Any] = {"attempt": record.get("attempts", 0), "error": error, "at": now}
    if traceback:
        entry["traceback"] = traceback[-TRACEBACK_KEPT:]
    record["errors"] = [*record.get("errors", []), entry][-ERRORS_KEPT:]


MAX_RUNNING_RECHECK_MS = 100  # as fetch.lua


class _Queue:
    def __init__(self) -> None:
        self.ready: deque[str] = deque()
        self.delayed: list[tuple[float, str]] = []  # sorted (due, id)
        self.held: dict[str, list[str]] = {}  # worker id -> job ids
        self.failed: dict[str, float] = {}  # id -> failed at
        self.paused = False
        self.starts: deque[int] = deque()  # claim times (ms) in the rate limit's window


class MemoryDriver:
    """Queues in this process's memory, for producers and admins; `session()` does a worker's
    steps on them. A session's `wait()` blocks on the lock's condition variable."""

    def __init__(
        self,
        *,
        completed_ttl: float = defaults.COMPLETED_TTL,
        failed_ttl: float = defaults.FAILED_TTL,
        clock: Callable[[], float] = time.time,
    ):
        self.completed_ttl, self.failed_ttl, self.clock = completed_ttl, failed_ttl, clock
        self._queues: dict[str, _Queue] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._bodies: dict[str, str] = {}
        self._unique: dict[tuple[str, str], tuple[str, int]] = {}  # (queue, key) -> (id, until)
        self._schedules: dict[tuple[str, str], dict[str, Any]] = {}  # (queue, name) -> its hash
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # a push or a hand-back: wakes idle workers
        self._finished = threading.Condition(lock)  # a job finished: wakes qm.result()
        self._class_starts: dict[str, list[int]] = {}  # job class -> its recent starts (ms)
        self._class_running: dict[str, list[str]] = {}  # job class -> ids it began

    def _q(self, name: str) -> _Queue:
        return self._queues.setdefault(name, _Queue())

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _save(self, job_id: str, record: dict[str, Any], **changes: Any) -> None:
        record.update(changes, updated_at=self._now_ms())
        for key in [k for k, v in record.items() if v is None]:
            del record[key]
        self._records[job_id] = record

    def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int:
        with self._cond:
            now, q, stored = self._now_ms(), self._q(queue), 0
            for job_id, body, initial in jobs:
                if job_id in self._records:
                    continue
                stored += 1
                self._bodies[job_id] = body
                record = dict(initial, attempts=0, created_at=now)
                if delay > 0:
                    due = now + int(delay * 1000 + 0.999)
                    self._save(job_id, record, status="delayed", due_at=due)
                    bisect.insort(q.delayed, (due, job_id))
                else:
                    self._save(job_id, record, status="queued")
                    q.ready.append(job_id)
            self._cond.notify_all()
            return stored

    def enqueue_unique(
        self,
        queue: str,
        job: tuple[str, str, dict[str, Any]],
        unique_key: str,
        unique_for: float,
        delay: float = 0.0,
    ) -> tuple[str, bool]:
        """As lua/enqueue.lua with a unique key: see there."""
        with self._cond:
            now = self._now_ms()
            holder, until = self._unique.get((queue, unique_key), ("", 0))
            record = self._records.get(holder)
            if until > now and record is not None and record["status"] in WAITING_OR_RUNNING:
                return holder, False
            self.enqueue(queue, [job], delay)
            self._unique[(queue, unique_key)] = (job[0], now + max(int(unique_for * 1000), 1))
            return job[0], True

    def _release_unique(self, job_id: str, record: dict[str, Any]) -> None:
        """As release_unique in lua/includes/common.lua: the job completed, failed or was
        cancelled; a key held by another job by now is left alone."""
        key = (str(record.get("queue")), str(record.get("unique_key")))
        if "unique_key" in record and self._unique.get(key, ("",))[0] == job_id:
            del self._unique[key]

    def _promote(self, q: _Queue, now: int) -> None:
        while q.delayed and q.delayed[0][0] <= now:
            _, job_id = q.delayed.pop(0)
            record = self._records.get(job_id)
            if record is not None and record["status"] == "delayed":
                self._save(job_id, record, status="queued")
            q.ready.append(job_id)

    def _begin(self, job_id: str, record: dict[str, Any], worker_id: str, now: int) -> None:
        """Begin a job (its attempt counts), or the failed() hook of a failed one."""
        if record["status"] == "failed":
            self._save(job_id, record, hook=HOOK_STARTED)
            return
        self._save(
            job_id,
            record,
            status="processing",
            attempts=record.get("attempts", 0) + 1,
            worker=worker_id,
            started_at=now,
        )

    def _take(self, q: _Queue, worker_id: str, job_id: str) -> bool:
        held = q.held.get(worker_id, [])
        if job_id not in held:
            return False
        held.remove(job_id)
        if not held:
            del q.held[worker_id]
        return True

    def _hand_back(self, q: _Queue, job_id: str) -> None:
        record = self._records.get(job_id)
        if record is not None and record["status"] == "cancelled":
            return  # cancelled while claimed: dropped
        if record is not None and record["status"] == "processing":
            attempts = max(record.get("attempts", 1) - 1, 0)
            self._save(job_id, record, status="queued", attempts=attempts, worker=None)
        elif record is not None and record.get("hook") == HOOK_STARTED:
            self._save(job_id, record, hook=HOOK_PENDING)
        q.ready.appendleft(job_id)

    def _fail(self, q: _Queue, job_id: str, record: dict[str, Any], now: int, **extra: Any) -> None:
        """Fail a job for good: the one place that does, as mark_failed in lua/includes."""
        expires = now + int(self.failed_ttl * 1000)
        flow_outcome(self, job_id, record, "failed", now, int(self.failed_ttl * 1000))
        self._save(
            job_id,
            record,
            status="failed",
            worker=None,
            finished_at=now,
            expires_at=expires,
            **extra,
        )
        q.failed[job_id] = now
        self._finished.notify_all()
        self._release_unique(job_id, record)

    def _cancel(self, job_id: str, record: dict[str, Any], now: int, flow: bool = True) -> None:
        """Cancel a job: the one place that does, as mark_cancelled in lua/includes (`flow`
        False: as cancel_record, leaving its workflow alone)."""
        expires = now + int(self.failed_ttl * 1000)
        if flow:
            flow_outcome(self, job_id, record, "cancelled", now, int(self.failed_ttl * 1000))
        self._save(
            job_id,
            record,
            status="cancelled",
            worker=None,
            due_at=None,
            finished_at=now,
            expires_at=expires,
        )
        self._finished.notify_all()
        self._release_unique(job_id, record)

    def cancel(self, job_id: str) -> Cancel:
        """As lua/cancel.lua: see there."""
        with self._cond:
            record = self._records.get(job_id)
            if record is None or record["status"] not in WAITING_OR_RUNNING:
                return Cancel.NOTHING
            if record["status"] == "processing":
                if "cancel_requested_at" not in record:
                    self._save(job_id, record, cancel_requested_at=self._now_ms())
                return Cancel.STOPPING
            q = self._q(queue_of(job_id))
            if job_id in q.ready:
                q.ready.remove(job_id)
            q.delayed = [(due, i) for due, i in q.delayed if i != job_id]
            self._cancel(job_id, record, self._now_ms())
            return Cancel.CANCELLED

    def _class_wait(self, limit: list[Any], now: int) -> int | None:
        """ms until a job class's limits let one more start, or None (as fetch.lua)."""
        name, count, window, most = limit
        wait = None
        if count:
            starts = [t for t in self._class_starts.get(name, []) if t > now - window]
            if len(starts) >= count:
                wait = max(starts[0] + window - now, 1)
        if most:
            running = self._running_of(name)
            if len(running) >= most:
                wait = max(wait or 0, int(MAX_RUNNING_RECHECK_MS))
        return wait

    def _class_started(self, limit: list[Any], job_id: str, now: int) -> None:
        name, count, window, most = limit
        if count:
            starts = [t for t in self._class_starts.get(name, []) if t > now - window]
            self._class_starts[name] = [*starts, now]
        if most:
            self._class_running[name] = [job_id, *self._running_of(name)]

    def _running_of(self, name: str) -> list[str]:
        return [
            i
            for i in self._class_running.get(name, [])
            if (self._records.get(i) or {}).get("status") == "processing"
        ]

    def uptime(self, queue: str) -> float:
        return float("inf")  # it lives as long as the process that reads it

    def set_paused(self, queue: str, paused: bool) -> bool:
        with self._cond:
            q = self._q(queue)
            changed, q.paused = q.paused != paused, paused
            if changed and not paused:
                self._cond.notify_all()  # idle workers look again
            return changed

    def is_paused(self, queue: str) -> bool:
        with self._cond:
            return self._q(queue).paused

    def cancel_requests(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        with self._cond:
            records = {i: self._records.get(i) for i in job_ids}
            return {i for i, record in records.items() if record and cancel_requested(record)}

    def requeue_worker(
        self,
        queue: str,
        worker_id: str,
        reason: str,
        only_if_expired: bool = False,
        count_attempt: bool = True,
    ) -> Requeued:
        """As lua/requeue.lua: see there."""
        with self._cond:
            q, now, handed, failed = self._q(queue), self._now_ms(), 0, []
            for job_id in reversed(q.held.pop(worker_id, [])):
                record = self._records.get(job_id)
                if record is None:
                    continue
                hook_started = record["status"] == "failed" and record.get("hook") == HOOK_STARTED
                if count_attempt and hook_started:
                    # it died inside the failed() hook: never run that hook again
                    self._save(job_id, record, hook=None, hook_error=reason, worker=None)
                    continue
                if stop_requested(record):
                    self._cancel(job_id, record, now)  # killed for its cancel: never again
                    continue
                if not count_attempt or record["status"] != "processing":
                    self._hand_back(q, job_id)  # a shutdown, or claimed in a batch, not begun
                    handed += 1
                    continue
                note_error(record, reason, None, now)
                if record.get("attempts", 0) >= record.get("max_tries", 1):
                    self._fail(q, job_id, record, now, hook=HOOK_PENDING)
                    failed.append((job_id, str(record.get("job", "?"))))
                else:
                    self._save(job_id, record, status="queued", worker=None)
                q.ready.appendleft(job_id)
                handed += 1
            self._cond.notify_all()
            return Requeued(handed, tuple(failed))

    def renew(self, queue: str, worker_ids: Sequence[str], lease: float) -> None:
        """Leases never lapse in one process: a worker here cannot die without the test."""

    def status(self, job_id: str) -> dict[str, Any] | None:
        with self._cond:
            record = self._records.get(job_id)
            if record is None or record.get("expires_at", float("inf")) <= self._now_ms():
                return None
            return public_record(job_id, copy.deepcopy(record))

    def wait_finished(self, job_id: str, timeout: float | None) -> dict[str, Any] | None:
        """As RedisDriver.wait_finished: woken by complete() and _fail()."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                record = self.status(job_id)
                if record is None or record["status"] in FINISHED:
                    return record
                left = RECHECK if deadline is None else min(deadline - time.monotonic(), RECHECK)
                if left <= 0:
                    return record
                self._finished.wait(left)

    def aio(self) -> MemoryAsync:
        from jobpool.drivers.memory.session import MemoryAsync

        return MemoryAsync(self)

    def counts(self, queue: str) -> dict[str, int]:
        with self._cond:
            q = self._q(queue)
            in_flight = sum(len(ids) for ids in q.held.values())
            return {
                "ready": len(q.ready),
                "delayed": len(q.delayed),
                "in_flight": in_flight,
                "failed": len(q.failed),
            }

    def failed_jobs(self, queue: str, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
        with self._cond:
            failed = self._q(queue).failed
            ids = sorted(failed, key=lambda job_id: failed[job_id])[start : start + count]
            return [public_record(i, copy.deepcopy(self._records[i])) for i in ids]

    def retry_failed(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        with self._cond:
            q, n = self._q(queue), 0
            for job_id in list(q.failed) if job_ids is None else job_ids:
                record = self._records.get(job_id)
                if job_id not in q.failed or record is None or record.get("hook"):
                    continue
                del q.failed[job_id]
                self._save(
                    job_id,
                    record,
                    status="queued",
                    attempts=0,
                    finished_at=None,
                    expires_at=None,
                    last_error=record.get("error"),
                    error=None,
                    traceback=None,
                )
                q.ready.append(job_id)
                n += 1
            self._cond.notify_all()
            return n

    def delete(self, job_id: str) -> bool:
        with self._cond:
            record = self._records.get(job_id)
            if record is None:
                return False
            if record["status"] == "processing":
                raise ValueError(f"job {job_id} is being processed; delete it after it finishes")
            q = self._q(queue_of(job_id))
            if job_id in q.ready:
                q.ready.remove(job_id)
            q.delayed = [(d, i) for d, i in q.delayed if i != job_id]
            q.failed.pop(job_id, None)
            del self._records[job_id]
            self._bodies.pop(job_id, None)
            return True

    def session(self, small_replies: bool = False) -> MemorySession:
        from jobpool.drivers.memory.session import MemorySession

        return MemorySession(self)

    def schedule_tick(
        self,
        queue: str,
        name: str,
        tick: float,
        job: tuple[str, str, dict[str, Any]],
        catch_up: bool,
        grace: float,
        unique: tuple[str, float] | None = None,
    ) -> TickClaim:
        """As lua/schedule_tick.lua: see there."""
        with self._cond:
            state = self._schedules.setdefault((queue, name), {})
            claimed, now = state.get("claimed"), self.clock()
            if claimed is not None and claimed >= tick:
                return TickClaim("claimed", state.get("run_job", ""), claimed)
            if now - tick > grace and (claimed is None or not catch_up):
                state.update(claimed=tick, outcome="skipped")
                return TickClaim("skipped", "", tick)
            job_id = job[0]
            if unique is not None:
                job_id, created = self.enqueue_unique(queue, job, *unique)
                if not created:
                    state.update(claimed=tick, outcome="held", held_by=job_id)
                    return TickClaim("held", job_id, tick)
            else:
                self.enqueue(queue, [job])
            self._records[job_id]["tick_at"] = round(tick * 1000)
            state.update(claimed=tick, outcome="pushed", run_tick=tick, run_job=job_id, run_at=now)
            return TickClaim("pushed", job_id, tick)

    def schedule_state(self, queue: str, name: str) -> dict[str, Any] | None:
        with self._cond:
            state = self._schedules.get((queue, name))
            return dict(state) if state else None

    def enqueue_flow(self, plan: FlowPlan) -> None:
        """As lua/enqueue_flow.lua: see there."""
        with self._cond:
            if plan.field in self._records:
                return
            now, q = self._now_ms(), self._q(plan.queue)
            flow = copy.deepcopy(plan.record)
            self._records[plan.field] = dict(flow, status="processing", created_at=now)
            self._records[plan.field]["updated_at"] = now
            for (job_id, body, initial), ready in zip(plan.entries, plan.ready, strict=True):
                self._bodies[job_id] = body
                record = dict(initial, attempts=0, created_at=now)
                self._save(job_id, record, status="queued" if ready else "waiting")
                if ready:
                    q.ready.append(job_id)
            self._cond.notify_all()

    def flow(self, flow_id: str) -> dict[str, Any] | None:
        with self._cond:
            now = self._now_ms()
            for kind in KINDS:
                record = self._records.get(flow_field(kind, flow_id))
                if record is None or record.get("expires_at", float("inf")) <= now:
                    continue
                jobs = {i: copy.deepcopy(self._records.get(i)) for i in related_ids(record)}
                return flow_status(flow_id, copy.deepcopy(record), jobs)
            return None

    def close(self) -> None:
        """Nothing to close: the queues live as long as the driver object."""
