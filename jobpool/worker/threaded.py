"""A worker that runs up to `concurrency` jobs at once: sync jobs on threads, async jobs as tasks
on one event loop (see slots.py), for work that mostly waits on the network.

The main thread claims jobs (as many as the free slots, and up to `prefetch` more while they
are short), puts them on the slots' local queue, and watches them: it cancels an async job's
task past its timeout or when qm.cancel() asks, and records a sync job that ran past its
timeout or was cancelled, since a thread cannot be stopped. Such a worker stops claiming, lets
its other jobs finish (for up to `graceful_timeout`), hands back what still runs without
counting an attempt, and exits to be replaced.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import redis

from jobpool import defaults
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.errors import JobTimeoutError
from jobpool.job import Job, decode_job
from jobpool.limits import Limits
from jobpool.process import limit_malloc_arenas
from jobpool.worker.events import WorkerEvents
from jobpool.worker.loop import BATCH_SECONDS, IDLE_TICK, Worker
from jobpool.worker.runner import JobRunner, job_fields
from jobpool.worker.slots import JobSlots, RunningJob
from jobpool.worker.user_code import UserCode

if TYPE_CHECKING:
    from jobpool.config import QueueConfig
    from jobpool.manager import QueueManager

log = logging.getLogger("jobpool.worker")
CANCEL_CHECK_EVERY = 1.0  # seconds between looks for cancel requests, while jobs run


class JobCancelledError(Exception):
    """Recorded as the error of a sync job cancelled while it ran."""


class ThreadedWorker(Worker):
    def __init__(
        self,
        manager: QueueManager,
        queue: str | None = None,
        *,
        concurrency: int,
        timeout: float | None = None,
        graceful_timeout: float = defaults.GRACEFUL_TIMEOUT,
        worker_id: str | None = None,
        lease: float = defaults.LEASE,
        prefetch: int = defaults.PREFETCH,
        events: WorkerEvents | None = None,
        limits: Limits | Mapping[str, Limits] | None = None,
        serve: Sequence[str] = (),
        weights: Sequence[int] = (),
    ):
        super().__init__(
            manager,
            queue,
            worker_id=worker_id,
            lease=lease,
            prefetch=prefetch,
            events=events,
            limits=limits,
            serve=serve,
            weights=weights,
        )
        self.concurrency = concurrency
        self.timeout = timeout  # the queue's; a job's own `timeout` wins
        self.graceful_timeout = graceful_timeout
        self.events.set_concurrency(concurrency)
        self.slots = JobSlots(concurrency, self._slot_runner, self._job_timeout)
        self._holding: set[str] = set()  # claimed and not yet ended: a fetch must leave them
        self._last_collect = time.monotonic()
        self._next_cancel_check = 0.0
        self._leave_by: float | None = None  # a stuck job: leave by then, whatever still runs

    def _make_user_code(self) -> UserCode:
        return UserCode(threaded=True)

    def _slot_runner(self, slot: int) -> JobRunner:
        session = self.driver.session(small_replies=True)  # a connection per thread
        session.open(self.queue)  # now: the thread's first job need not wait for it
        return JobRunner(
            self.manager,
            session,
            self.user_code,
            self.events,
            self.worker_id,
            slot=slot,
            tracker=self.slots,
        )

    def _job_timeout(self, job: Job) -> float | None:
        return float(getattr(job, "timeout", None) or self.timeout or 0) or None

    # -- the loop ------------------------------------------------------------------------------

    def _take_jobs(self, max_jobs: int, burst: bool) -> int:
        limit_malloc_arenas(2)  # process-wide: here, in the running worker, before its threads
        self.slots.start()
        try:
            while not self.stopping:
                self._collect(max_jobs)
                self._watch(time.monotonic())
                if self.stopping:
                    break
                want = self._claim_size()
                if not want:
                    self.slots.wait(self._watch_in(), self._wakeup_fd(), self._ends_to_claim())
                    self._drain_wakeup()
                    continue
                fetched = self._guarded(functools.partial(self._claim, want), max_jobs)
                if fetched is None:
                    continue
                if fetched.paused:
                    self._wait_paused(max_jobs)
                    continue
                self._resumed()
                if fetched.limited_for is not None:
                    self.slots.wait(min(fetched.limited_for, self._watch_in()), self._wakeup_fd())
                    self._drain_wakeup()
                    continue
                if fetched.deliveries:
                    claimed_at = time.monotonic()
                    for delivery in fetched.deliveries:
                        self._holding.add(delivery.id)
                        self.slots.submit(delivery, claimed_at)
                    continue
                if burst and fetched.next_due is None:
                    if not self.slots.busy:
                        break
                    self.slots.wait(self._watch_in(), self._wakeup_fd())
                    continue
                due = IDLE_TICK if fetched.next_due is None else fetched.next_due
                self._guarded(functools.partial(self._idle, min(due, self._watch_in())), max_jobs)
            self._drain()
        finally:
            self.slots.stop()
        return self.jobs_done

    def _claim_size(self) -> int:
        """How many jobs to claim now, 0 for none: the threads are kept supplied with jobs
        to start at once, while jobs are short up to `prefetch` more than the threads (about
        BATCH_SECONDS of work per claim, as the one-job worker does). A claim is made when a
        thread is free, or when half of that extra supply is used up."""
        extra = self._extra_supply()
        room = self.slots.count + extra - self.slots.busy
        if self.slots.free > 0 or room >= max(1, extra // 2):
            return max(room, 0)
        return 0

    def _extra_supply(self) -> int:
        """Jobs to keep claimed beyond the threads: about BATCH_SECONDS of work, at most
        `prefetch`."""
        return min(self.prefetch, int(BATCH_SECONDS / self._job_seconds))

    def _ends_to_claim(self) -> int:
        """How many job ends from now make _claim_size() above 0: the main thread sleeps
        until then (or its next deadline), instead of waking at every end."""
        extra = self._extra_supply()
        room = self.slots.count + extra - self.slots.busy
        to_free = self.slots.busy - self.slots.count + 1
        return max(1, min(to_free, max(1, extra // 2) - room))

    def _held(self) -> list[str]:
        return list(self._holding)

    def _collect(self, max_jobs: int) -> None:
        ended = self.slots.collect()
        self._holding.difference_update(job_id for job_id, _ in ended)
        if ended:
            self.jobs_done += len(ended)
            now = time.monotonic()
            self._learn(len(ended), now - self._last_collect)
            self._last_collect = now
            self._check_stop(max_jobs)

    def _drain(self) -> None:
        """Stopping: hand back the jobs not started, let the running ones finish (the master
        kills us past graceful_timeout; a stuck job's worker leaves by itself then)."""
        waiting = self.slots.take_back()
        for queue in {d.queue for d in waiting}:
            self.runner.release(queue, [d.id for d in waiting if d.queue == queue])
        self._holding.difference_update(d.id for d in waiting)
        while self.slots.busy > self.slots.stuck():
            if self._leave_by is not None and time.monotonic() >= self._leave_by:
                log.warning(
                    "%d job(s) still running past graceful_timeout: handed back",
                    self.slots.busy - self.slots.stuck(),
                    extra={"queue": self.queue},
                )
                return
            self.slots.wait(self._watch_in(), self._wakeup_fd())
            self._drain_wakeup()
            self._collect(0)
            self._watch(time.monotonic())

    # -- watching the running jobs ----------------------------------------------------------------

    def _watch_in(self) -> float:
        """Seconds until the main thread must look at the running jobs again."""
        now = time.monotonic()
        due = [now + IDLE_TICK]
        for running in self.slots.snapshot():
            if running.deadline is not None and not running.taken_over:
                due.append(running.deadline)
        if self.slots.busy:
            due.append(self._next_cancel_check)
        if self._leave_by is not None:
            due.append(self._leave_by)
        return max(0.0, min(due) - now)

    def _watch(self, now: float) -> None:
        """Enforce the running jobs' timeouts, and their cancel requests once a second."""
        running = [r for r in self.slots.snapshot() if not r.taken_over]
        for job in running:
            if job.deadline is not None and now >= job.deadline:
                self._stop_job(job, JobTimeoutError(f"timeout after {job.timeout:g} s"), "timeout")
        if running and now >= self._next_cancel_check:
            self._next_cancel_check = now + CANCEL_CHECK_EVERY
            for job in self._cancelled(running):
                self._stop_job(job, JobCancelledError("cancelled while it ran"), "cancel")

    def _cancelled(self, running: list[RunningJob]) -> list[RunningJob]:
        asked: set[str] = set()
        try:
            for queue in {r.delivery.queue for r in running}:
                ids = [r.delivery.id for r in running if r.delivery.queue == queue]
                asked |= self.driver.cancel_requests(queue, ids)
        except (*CONNECTION_ERRORS, redis.ResponseError) as exc:
            log.warning("cannot look for cancelled jobs (%s); will retry", exc)
            return []
        return [r for r in running if r.delivery.id in asked]

    def _stop_job(self, job: RunningJob, error: Exception, reason: str) -> None:
        """An async job: cancel its task (its thread records it). A sync job: record it here
        (the timeout counts an attempt; a cancel ends it cancelled), then leave to be replaced
        once the other jobs finish, since its thread cannot be stopped."""
        future = job.future
        if future is not None:
            if reason == "cancel":
                future.cancel()  # past a timeout, the thread cancels it (user_code.call_timed)
            return
        if not job.take_over():
            return  # it ended just now
        fields = job_fields(job.delivery)
        log.error(
            "%s: a job thread cannot be stopped, so this worker takes no more jobs and is "
            "replaced once its other jobs end",
            error,
            extra=fields,
        )
        try:
            fresh = decode_job(job.delivery.body)  # the running object is still in use
        except Exception:  # noqa: BLE001 - it decoded once; be safe anyway
            fresh = None
        took = time.monotonic() - job.started
        outcome = self.runner.record_failure(job.delivery, fresh, error, took=took)
        self.runner.flush()
        self.events.job_finished(job.delivery, outcome, job.slot)
        if not self.stopping:
            self.stopping = True
            self.stopped_because = reason
            self._leave_by = time.monotonic() + self.graceful_timeout


def make_worker(
    manager: QueueManager,
    qcfg: QueueConfig,
    *,
    worker_id: str | None = None,
    events: WorkerEvents | None = None,
    limits: Mapping[str, Limits] | None = None,
) -> Worker:
    """The worker a queue's settings ask for: one job at a time, or `concurrency` at once,
    from its queue or the queues it serves; `limits`: those of each queue served (default: the
    queue's own)."""
    limits = {qcfg.name: qcfg.limits} if limits is None else limits
    if qcfg.concurrency == 1:
        return Worker(
            manager,
            qcfg.name,
            worker_id=worker_id,
            lease=qcfg.lease,
            prefetch=qcfg.prefetch,
            events=events,
            limits=limits,
            serve=qcfg.serve,
            weights=qcfg.weights,
        )
    return ThreadedWorker(
        manager,
        qcfg.name,
        concurrency=qcfg.concurrency,
        timeout=qcfg.timeout,
        graceful_timeout=qcfg.graceful_timeout,
        worker_id=worker_id,
        lease=qcfg.lease,
        prefetch=qcfg.prefetch,
        events=events,
        limits=limits,
        serve=qcfg.serve,
        weights=qcfg.weights,
    )
