"""The worker: claim a job, run it, record the outcome; drain on SIGTERM.

One worker serves one queue in one process. Under `jobpool start` the supervisor forks it and
renews its lease; run alone (`jobpool worker`), a forked lease keeper renews it instead, so that
a job holding the CPU or the GIL cannot let the lease lapse.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import signal
import socket
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

from jobpool import defaults
from jobpool.backoff import Backoff
from jobpool.context import running_job, running_with
from jobpool.drivers.base import Delivery, Outcome
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.drivers.redis.replies import ReplyLog
from jobpool.errors import JobDecodeError, WorkerLostError
from jobpool.job import Job, decode_job, encode_result
from jobpool.process import same_file
from jobpool.retry import DEFAULT_POLICY, RetryPolicy, retry_policy
from jobpool.worker.events import WorkerEvents
from jobpool.worker.lease_keeper import LeaseKeeper
from jobpool.worker.user_code import UserCode

if TYPE_CHECKING:
    from jobpool.manager import QueueManager

log = logging.getLogger("jobpool.worker")
IDLE_TICK = 1.0  # most seconds an idle worker waits before it looks for expired leases again
BATCH_SECONDS = 0.05  # a claimed job should wait about this long at most behind its batch
REFUSED_BACKOFF_CAP = 15.0  # longest pause between tries while Redis refuses (full, read-only)
# A job of a batch that waited longer than this behind the jobs before it has its begin confirmed
# (one round trip) before it runs, so that a cancel that came meanwhile is seen. A batch of short
# jobs (about BATCH_SECONDS of work) never waits that long, and keeps its begins pipelined.
CONFIRM_AFTER = 2 * BATCH_SECONDS


class WorkerShutdown(BaseException):
    """Raised by a second SIGTERM/SIGINT to stop at once; the running job is handed back."""


def new_worker_id(queue: str) -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{os.urandom(3).hex()}"


def job_fields(delivery: Delivery) -> dict[str, Any]:
    """The fields every log line about a job carries."""
    return {"job_id": delivery.id, "queue": delivery.queue, "job_class": delivery.job_class}


class Worker:
    """Runs the jobs of one queue.

    `process(delivery)` runs one claimed job (unit tests call it directly); `run()` is the loop.
    """

    def __init__(
        self,
        manager: QueueManager,
        queue: str | None = None,
        *,
        worker_id: str | None = None,
        lease: float = defaults.LEASE,
        prefetch: int = defaults.PREFETCH,
        events: WorkerEvents | None = None,
    ):
        self.manager = manager
        self.driver = manager.driver
        self.session = manager.driver.session()
        self.queue = manager.queue_name(queue=queue)
        self.worker_id = worker_id or new_worker_id(self.queue)
        self.lease = lease
        self.prefetch = prefetch
        self.events = events or WorkerEvents()
        self.stopping = False
        self.stopped_because: str | None = None
        self.jobs_done = 0
        self._job_seconds = BATCH_SECONDS / 8  # running estimate of one job's time; 8 at first
        self._wakeup_r: int | None = None
        self._wakeup_intact: Callable[[], bool] = lambda: True
        self._exiting = False  # handing back at exit: a late signal must not cut that short
        self.user_code = UserCode()
        self._refusals = ReplyLog(log)

    # -- one job -----------------------------------------------------------------------------

    def process(self, delivery: Delivery) -> Outcome:
        """Run one claimed job to its outcome: completed, retrying or failed (recorded in the
        queue before this returns)."""
        outcome = self._run_one(delivery)
        self._call(self.session.flush)
        return outcome

    def _run_one(self, delivery: Delivery, confirm: bool = False) -> Outcome:
        """Begin and run one claimed job; `confirm`: wait for its begin to be recorded first, so
        that a job cancelled while it waited in the batch is skipped (see CONFIRM_AFTER)."""
        delivery = self.session.begin(delivery, confirm)
        if delivery.record.get("status") == "cancelled":
            log.info("cancelled before it began; skipped", extra=job_fields(delivery))
            outcome = Outcome.CANCELLED
        else:
            with running_job(self.manager, delivery):  # current_job(), and the job on log lines
                outcome = self._process(delivery)
        if not delivery.hook:  # a hook's job was counted failed when its worker died
            self.events.job_finished(delivery, outcome)
        return outcome

    def _process(self, delivery: Delivery) -> Outcome:
        try:
            job = decode_job(delivery.body)
        except Exception as exc:  # noqa: BLE001 - a hostile payload fails its job, not the worker
            error = exc if isinstance(exc, JobDecodeError) else JobDecodeError(f"{exc!r}")
            log.error("job cannot run: %s", error, extra=job_fields(delivery))
            return self._record_failure(delivery, None, error, force=True)
        if delivery.hook:
            return self._finish_lost(delivery, job)
        self.events.job_started(delivery, job)
        started = time.monotonic()
        try:
            returned = self.user_code.call(job.handle)
            result = encode_result(job, returned, self.manager.max_result)
        except WorkerShutdown:
            self.user_code.leave_if_forked(1)
            self._call(lambda: self.session.release(self.worker_id, delivery.queue, [delivery.id]))
            raise
        except BaseException as exc:  # noqa: BLE001 - a job's SystemExit/KeyboardInterrupt too
            self.user_code.leave_if_forked(1)
            return self._record_failure(delivery, job, exc, took=time.monotonic() - started)
        took = time.monotonic() - started
        self.session.complete(delivery, result)  # a lapsed lease: logged when the reply is read
        log.info("completed in %.3fs", took, extra=job_fields(delivery))
        return Outcome.COMPLETED

    def _record_failure(
        self,
        delivery: Delivery,
        job: Job | None,
        exc: BaseException,
        *,
        force: bool = False,
        took: float = 0.0,
    ) -> Outcome:
        error = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        fail_now, delay = _policy(job).decide(exc, delivery.attempts)
        force = force or fail_now
        outcome: Outcome = self._call(
            lambda: self.session.retry_or_fail(delivery, delay, error, tb, force_fail=force)
        )
        fields = job_fields(delivery)
        attempt = f"attempt {delivery.attempts}/{delivery.max_tries}"
        if outcome is Outcome.RETRYING:
            log.warning(
                "%s failed after %.3fs (%s); retry in %gs",
                attempt,
                took,
                error,
                delay,
                extra=fields,
            )
        elif outcome is Outcome.CANCELLED:
            log.warning(
                "cancelled: %s ended (%s) after it was asked to stop", attempt, error, extra=fields
            )
        elif outcome is Outcome.FAILED:
            log.error("failed for good, %s (%s)", attempt, error, extra=fields)
            if job is not None:
                self._run_failed_hook(job, exc, delivery)
        return outcome

    def _finish_lost(self, delivery: Delivery, job: Job) -> Outcome:
        """A job whose workers kept dying: run its failed() hook here, once."""
        error = WorkerLostError(delivery.record.get("error") or "worker lost")
        self._run_failed_hook(job, error, delivery)
        self._call(lambda: self.session.retry_or_fail(delivery, 0, "", "", force_fail=True))
        log.error("failed for good: %s", error, extra=job_fields(delivery))
        return Outcome.FAILED

    def _run_failed_hook(self, job: Job, exc: BaseException, delivery: Delivery) -> None:
        try:
            with running_with(self.manager):
                self.user_code.call(job.failed, exc)
        except WorkerShutdown:
            self.user_code.leave_if_forked(1)
            raise
        except BaseException:  # noqa: BLE001 - the hook must never take the worker down
            self.user_code.leave_if_forked(1)
            log.exception("the job's failed() hook raised", extra=job_fields(delivery))

    def _call(self, step: Callable[[], Any]) -> Any:
        """Run an idempotent queue step, retrying across dropped connections, restarts and
        refusals (a full or read-only Redis) until it is done."""
        backoff = None
        while True:
            try:
                return step()
            except CONNECTION_ERRORS as exc:
                backoff = backoff or Backoff()
                wait = backoff.next()
                log.warning("redis unreachable (%s); retrying in %.1fs", exc, wait)
                time.sleep(wait)
            except redis.ResponseError as exc:
                backoff = backoff or Backoff(cap=REFUSED_BACKOFF_CAP)
                self._refusals.report(exc, "a job's outcome (kept; retrying)")
                time.sleep(backoff.next())

    # -- the loop ----------------------------------------------------------------------------

    def run(
        self,
        *,
        max_jobs: int = 0,
        burst: bool = False,
        install_signals: bool = True,
        keep_lease: bool = True,
    ) -> int:
        """Take jobs until stopped (SIGTERM/SIGINT), `max_jobs` are done, or, with `burst`,
        nothing is left to do now. Returns the number of jobs run.

        `keep_lease=False` when a supervisor renews this worker's lease."""
        if install_signals:
            self.install_signals()
        keeper = None
        if keep_lease:
            keeper = LeaseKeeper(self._renew, self.lease / 3, f"jobpool: lease keeper {self.queue}")
            keeper.start()
        self.user_code.adopt_process()
        try:
            return self._take_jobs(max_jobs, burst)
        except WorkerShutdown as stop:
            self.stopped_because = f"second {stop}"
            return self.jobs_done
        finally:
            self._exiting = True
            self.user_code.leave_if_forked(1)
            self.events.idle()
            if keeper is not None:
                keeper.stop()
            self._hand_back_all()
            self.user_code.close()

    def _hand_back_all(self) -> None:
        """Leave nothing behind: hand back, uncounted, whatever this worker still holds (a claim
        whose reply a second signal cut off) and drop its lease entry, so no peer has to reap
        it. Harmless if Redis is away: the lease then lapses and a peer does it."""
        with contextlib.suppress(*CONNECTION_ERRORS, redis.ResponseError):
            self.session.flush()
        with contextlib.suppress(*CONNECTION_ERRORS, redis.ResponseError):
            self.driver.requeue_worker(
                self.queue, self.worker_id, "worker stopped", count_attempt=False
            )
        self.session.close()

    def _renew(self) -> None:
        self.driver.renew(self.queue, [self.worker_id], self.lease)

    def _take_jobs(self, max_jobs: int, burst: bool) -> int:
        backoff, refused = Backoff(), Backoff(first=0.5, cap=REFUSED_BACKOFF_CAP)
        while not self.stopping:
            try:
                count = self._batch_size()
                fetched = self.session.fetch(self.queue, self.worker_id, count, self.lease)
                if fetched.stale_worker:
                    self._reap(fetched.stale_worker)
                if not fetched.deliveries:
                    if burst and fetched.next_due is None:
                        break
                    self._idle(fetched.next_due)
                    self._check_stop(max_jobs)
                backoff.reset()
                refused.reset()
            except CONNECTION_ERRORS as exc:
                wait = backoff.next()
                log.warning("redis unreachable (%s); reconnecting in %.1fs", exc, wait)
                self._pause(wait)
                continue
            except redis.ResponseError as exc:  # refused (full, read-only, ...): wait, not die
                self._refusals.report(exc, "a claim (retrying with backoff)")
                self._pause(refused.next())
                self._check_stop(max_jobs)
                continue
            started, before = time.monotonic(), self.jobs_done
            self._run_batch(fetched.deliveries, max_jobs)
            self._learn(self.jobs_done - before, time.monotonic() - started)
        return self.jobs_done

    def _pause(self, seconds: float) -> None:
        """Sleep between tries, cut short by a stop signal so that a drain never waits on it."""
        wakeup = self._wakeup_fd()
        if wakeup is None:
            time.sleep(seconds)
        else:
            select.select([wakeup], [], [], seconds)
            self._drain_wakeup()

    def _batch_size(self) -> int:
        """Claim as many jobs as run in about BATCH_SECONDS (at most `prefetch`): many short jobs
        per round trip, while a batch of slow ones never keeps its last job waiting for long."""
        return max(1, min(self.prefetch, int(BATCH_SECONDS / self._job_seconds)))

    def _learn(self, jobs: int, seconds: float) -> None:
        if jobs:
            self._job_seconds = 0.7 * self._job_seconds + 0.3 * max(seconds / jobs, 1e-6)

    def _check_stop(self, max_jobs: int = 0) -> None:
        """Asked after every job and idle tick: leave now? (`max_jobs` of run(), the events'
        memory and recycling limits, an orphaned child)."""
        if max_jobs and self.jobs_done >= max_jobs:
            self.stopping = True
            return
        reason = self.events.stop_reason()
        if reason is not None:
            self.stopped_because = reason
            self.stopping = True

    def _run_batch(self, deliveries: list[Delivery], max_jobs: int = 0) -> None:
        claimed = time.monotonic()
        for i, delivery in enumerate(deliveries):
            if self.stopping:
                rest = [d.id for d in deliveries[i:]]
                self._call(
                    functools.partial(self.session.release, self.worker_id, self.queue, rest)
                )
                return
            self._run_one(delivery, i > 0 and time.monotonic() - claimed > CONFIRM_AFTER)
            self.jobs_done += 1
            self._check_stop(max_jobs)

    def _idle(self, next_due: float | None) -> None:
        timeout = IDLE_TICK if next_due is None else min(next_due, IDLE_TICK)
        self.events.idle()
        if timeout > 0:
            self.session.wait(self.queue, timeout, self._wakeup_fd(), self.worker_id)
            self._drain_wakeup()

    def _reap(self, stale: str) -> None:
        requeued = self.driver.requeue_worker(
            self.queue, stale, "worker lost: its lease expired", only_if_expired=True
        )
        if requeued.handed > 0:
            log.warning(
                "worker %s stopped renewing its lease; %d job(s) handed back",
                stale,
                requeued.handed,
                extra={"queue": self.queue},
            )

    def stop(self) -> None:
        """Finish the current job, take no new one."""
        self.stopping = True

    # -- signals -----------------------------------------------------------------------------

    def install_signals(self, supervised: bool = False) -> None:
        """SIGTERM and SIGINT: finish the job, take no new one; a second one: stop at once.

        A supervised worker ignores SIGINT: Ctrl-C reaches the whole process group, and the
        master turns it into the SIGTERM of a drain; counting both would stop the job at once.
        """
        self._wakeup_pipe()
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, signal.SIG_IGN if supervised else self._on_stop_signal)

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        if self.stopping and not self._exiting:
            raise WorkerShutdown(signal.Signals(signum).name)
        self.stopping = True

    def _wakeup_pipe(self) -> None:
        """A pipe the C signal handler writes to, so that a signal ends an idle wait at once."""
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wakeup_r, self._wakeup_intact = r, same_file(r)
        signal.set_wakeup_fd(w)

    def _wakeup_fd(self) -> int | None:
        """The read end of the wake-up pipe, made anew if a job closed it (its number may be a
        socket's by now: reading it would steal that socket's data)."""
        if self._wakeup_r is not None and not self._wakeup_intact():
            self._wakeup_pipe()
        return self._wakeup_r

    def _drain_wakeup(self) -> None:
        if self._wakeup_r is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wakeup_r, 512)


def _policy(job: Job | None) -> RetryPolicy:
    if job is None:
        return DEFAULT_POLICY
    try:
        return retry_policy(job)
    except Exception:  # noqa: BLE001 - a broken attribute must not stop the failure record
        return DEFAULT_POLICY
