"""A worker's view of the in-memory driver (every step applies at once, under the driver's lock),
and its asyncio face for async producers."""

from __future__ import annotations

import asyncio
import bisect
import copy
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobpool import defaults
from jobpool.drivers.base import (
    HOOK_PENDING,
    Delivery,
    Fetched,
    Outcome,
    stop_requested,
)
from jobpool.drivers.memory.driver import MemoryDriver, _Queue, note_error
from jobpool.drivers.memory.flows import flow_outcome
from jobpool.limits import Limits

MAX_RUNNING_RECHECK = 0.1  # seconds before a worker at max_running looks again (as fetch.lua)
LIMITED_SCAN = 100  # most jobs over their class's limit one claim sets aside (as fetch.lua)


def _waits_to_begin(record: dict[str, Any]) -> bool:
    """Claimed, not begun: a job not processing yet, or a failed() hook still pending."""
    if record["status"] == "failed":
        return bool(record.get("hook") == HOOK_PENDING)
    return bool(record["status"] != "processing")


def _room(q: _Queue, limits: Limits, now: int) -> tuple[int, float]:
    """How many jobs the queue's limits let a claim take now, and if none, the seconds until
    one (as fetch.lua decides it)."""
    room, wait = 1 << 30, 0.0
    if limits.max_running is not None:
        room = limits.max_running - sum(len(ids) for ids in q.held.values())
        wait = MAX_RUNNING_RECHECK
    if limits.rate is not None:
        window = limits.rate.seconds * 1000
        while q.starts and q.starts[0] <= now - window:
            q.starts.popleft()
        left = limits.rate.count - len(q.starts)
        if left <= 0:
            wait = max(wait, (q.starts[0] + window - now) / 1000.0, 0.001)
        room = min(room, left, 1)  # one job per claim, begun by it (as fetch.lua)
    return room, wait


def _hand_back_stranded(
    d: MemoryDriver, q: _Queue, worker_id: str, held: Sequence[str] | None
) -> None:
    """What the worker's hands hold but `held` does not name goes back (as fetch.lua)."""
    keep = set(held or ())
    mine = q.held.pop(worker_id, [])
    for job_id in reversed([j for j in mine if j not in keep]):
        d._hand_back(q, job_id)
    kept = [j for j in mine if j in keep]
    if kept:
        q.held[worker_id] = kept


def _class_gate(
    d: MemoryDriver,
    q: _Queue,
    job_id: str,
    record: dict[str, Any],
    others: bool,
    aside: int,
    now: int,
) -> str:
    """What a claim does with a job as its class's own limits say (as fetch.lua): "run" (no
    limit), "alone" (claim it, and nothing more), "aside" (delayed until the limit allows, no
    attempt counted), or "stop" (put back: the next claim takes it)."""
    limit = record.get("limit") if record["status"] != "failed" else None
    if not limit:
        return "run"
    if others or aside >= LIMITED_SCAN:
        q.ready.appendleft(job_id)
        return "stop"
    wait = d._class_wait(limit, now)
    if wait is not None:
        d._save(job_id, record, status="delayed", due_at=now + wait)
        bisect.insort(q.delayed, (now + wait, job_id))
        return "aside"
    d._class_started(limit, job_id, now)
    return "alone"


class MemorySession:
    """A worker's steps on the memory driver's queues, each applied at once under its lock (as
    the Redis session's are by one script each)."""

    def __init__(self, driver: MemoryDriver):
        self.driver = driver

    def fetch(
        self,
        queue: str,
        worker_id: str,
        count: int = 1,
        lease: float = defaults.LEASE,
        held: Sequence[str] | None = None,
        limits: Limits | None = None,
    ) -> Fetched:
        d = self.driver
        with d._cond:
            now, q = d._now_ms(), d._q(queue)
            _hand_back_stranded(d, q, worker_id, held)
            if q.paused:
                d._promote(q, now)
                return Fetched([], None, None, paused=True)
            d._promote(q, now)
            room, wait = _room(q, limits, now) if limits else (count, 0.0)
            if room <= 0:
                return Fetched([], None, None, limited_for=wait)
            out: list[Delivery] = []
            peers = len(q.held) + 1  # the workers holding jobs, and this one
            count = min(count, room, max(len(q.ready) // peers, 1))  # a fair share
            set_aside = 0
            while q.ready and len(out) < count:
                job_id = q.ready.popleft()
                record = d._records.get(job_id)
                if record is None or job_id not in d._bodies:
                    continue
                gate = _class_gate(d, q, job_id, record, bool(out), set_aside, now)
                if gate == "stop":
                    break
                if gate == "aside":
                    set_aside += 1
                    continue
                if gate == "alone":
                    count = 1
                if record["status"] == "cancelled" or (
                    record["status"] == "failed" and not record.get("hook")
                ):
                    continue
                if not out:  # the rest begin later
                    d._begin(job_id, record, worker_id, now)
                q.held.setdefault(worker_id, []).append(job_id)
                if limits and limits.rate:
                    q.starts.append(now)
                body = d._bodies[job_id].encode()
                out.append(Delivery(job_id, queue, body, copy.deepcopy(record), worker_id))
            next_due = (q.delayed[0][0] - now) / 1000.0 if q.delayed else None
            return Fetched(out, next_due and max(next_due, 0.0))

    def begin(self, delivery: Delivery, confirm: bool = False) -> Delivery:
        """Begin a job claimed in a batch: its attempt counts from here (or its failed() hook
        is marked started). Always confirmed: a job cancelled while it waited comes back
        `cancelled`, dropped from the worker's hands."""
        d = self.driver
        with d._cond:
            record = d._records.get(delivery.id)
            q = d._q(delivery.queue)
            held = delivery.id in q.held.get(delivery.worker_id, [])
            if held and record is not None and record["status"] == "cancelled":
                d._take(q, delivery.worker_id, delivery.id)
            elif held and record is not None and _waits_to_begin(record):
                d._begin(delivery.id, record, delivery.worker_id, d._now_ms())
            current = copy.deepcopy(record) if record is not None else delivery.record
            return Delivery(delivery.id, delivery.queue, delivery.body, current, delivery.worker_id)

    def complete(self, delivery: Delivery, result: str = "") -> None:
        d = self.driver
        with d._cond:
            if not d._take(d._q(delivery.queue), delivery.worker_id, delivery.id):
                return  # its lease lapsed: another worker owns the job now
            now = d._now_ms()
            record = d._records.get(delivery.id, {})
            expires = now + int(d.completed_ttl * 1000)
            if "flow" in record:
                ttl = int(d.completed_ttl * 1000)
                flow_outcome(d, delivery.id, record, "completed", now, ttl)
            d._save(
                delivery.id,
                record,
                status="completed",
                worker=None,
                finished_at=now,
                expires_at=expires,
                result=json.loads(result) if result else None,
            )
            d._release_unique(delivery.id, record)
            d._bodies.pop(delivery.id, None)
            d._finished.notify_all()

    def retry_or_fail(
        self,
        delivery: Delivery,
        delay: float,
        error: str,
        traceback: str,
        force_fail: bool = False,
    ) -> Outcome:
        d = self.driver
        with d._cond:
            q = d._q(delivery.queue)
            if not d._take(q, delivery.worker_id, delivery.id):
                return Outcome.LOST
            now, record = d._now_ms(), d._records.get(delivery.id, {})
            if error:
                note_error(record, error, traceback, now)
            if stop_requested(record):
                d._cancel(delivery.id, record, now)  # cancelled while it ran: no retry, no hook
                return Outcome.CANCELLED
            was_failed = record.get("status") == "failed"
            attempts, max_tries = record.get("attempts", 0), record.get("max_tries", 1)
            if not was_failed and not force_fail and attempts < max_tries:
                due = now + int(delay * 1000 + 0.999)
                d._save(delivery.id, record, status="retrying", due_at=due, worker=None)
                bisect.insort(q.delayed, (due, delivery.id))
                d._cond.notify_all()
                return Outcome.RETRYING
            if was_failed:
                d._save(delivery.id, record, hook=None, worker=None)
            else:
                d._fail(q, delivery.id, record, now)
            return Outcome.FAILED

    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int:
        d = self.driver
        with d._cond:
            q, n = d._q(queue), 0
            for job_id in reversed(job_ids):
                if not d._take(q, worker_id, job_id):
                    continue
                record = d._records.get(job_id, {})
                if stop_requested(record):
                    d._cancel(job_id, record, d._now_ms())  # as lua/release.lua: not again
                else:
                    d._hand_back(q, job_id)
                    n += 1
            d._cond.notify_all()
            return n

    def wait(
        self,
        queue: str | Sequence[str],
        timeout: float,
        wakeup_fd: int | None = None,
        worker_id: str = "",
    ) -> list[str]:
        """Block until a push or a hand-back, or `timeout`; `wakeup_fd` and `worker_id` are
        not needed in one process. Nothing is moved, so no queue is named."""
        d = self.driver
        queues = [queue] if isinstance(queue, str) else queue
        with d._cond:
            if not any(d._q(q).ready for q in queues):
                d._cond.wait(timeout)
        return []

    def flush(self) -> None:
        """Nothing is ever in flight."""

    def open(self, queue: str) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """The driver owns everything."""


class MemoryAsync:
    """The async producer methods on the memory driver: storing is instant, and waiting for a
    result happens in a thread, so that the event loop goes on meanwhile."""

    def __init__(self, driver: MemoryDriver):
        self.driver = driver

    async def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int:
        return self.driver.enqueue(queue, jobs, delay)

    async def enqueue_unique(
        self,
        queue: str,
        job: tuple[str, str, dict[str, Any]],
        unique_key: str,
        unique_for: float,
        delay: float = 0.0,
    ) -> tuple[str, bool]:
        return self.driver.enqueue_unique(queue, job, unique_key, unique_for, delay)

    async def wait_finished(self, job_id: str, timeout: float | None) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.driver.wait_finished, job_id, timeout)

    async def close(self) -> None:
        """Nothing to close."""


if TYPE_CHECKING:  # mypy proves both keep the protocols of drivers/base.py
    from jobpool.drivers.base import AsyncDriver, Driver, Session

    def _conforms(
        driver: MemoryDriver, session: MemorySession, aio: MemoryAsync
    ) -> tuple[Driver, Session, AsyncDriver]:
        return driver, session, aio
