"""Running one claimed job to its recorded outcome: begin it, call its code, and record what
happened (completed with its result, retrying with backoff, failed with its failed() hook, or
cancelled), retrying each record across dropped connections and refusals.

A worker has one runner per job slot: one for `concurrency = 1`, else one per thread, each with
a session (a Redis connection) of its own.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis

from jobpool.backoff import Backoff
from jobpool.context import running_job, running_with
from jobpool.drivers.base import NOT_HELD, Delivery, Outcome, Session
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.drivers.redis.replies import ReplyLog
from jobpool.errors import JobDecodeError, WorkerLostError
from jobpool.job import Job, decode_job, encode_result
from jobpool.retry import DEFAULT_POLICY, RetryPolicy, retry_policy
from jobpool.worker.events import WorkerEvents
from jobpool.worker.user_code import UserCode

if TYPE_CHECKING:
    from jobpool.manager import QueueManager

log = logging.getLogger("jobpool.worker")
REFUSED_BACKOFF_CAP = 15.0  # longest pause between tries while Redis refuses (full, read-only)


class WorkerShutdown(BaseException):
    """Raised by a second SIGTERM/SIGINT to stop at once; the running job is handed back."""


class Ticket(Protocol):
    """A running job as a concurrent worker tracks it (see slots.py)."""

    timeout: float | None

    def attach(self, future: Any) -> None:
        """The job's task on the event loop, which a timeout or a cancel cancels."""

    def settle(self) -> bool:
        """True if this thread records the job's outcome; False if the worker already did
        (the job ran past its timeout, or was cancelled, while this thread ran it)."""
        ...


class Tracker(Protocol):
    def job_began(self, slot: int, delivery: Delivery, job: Job) -> Ticket: ...


def job_fields(delivery: Delivery) -> dict[str, Any]:
    """The fields every log line about a job carries."""
    return {"job_id": delivery.id, "queue": delivery.queue, "job_class": delivery.job_class}


class JobRunner:
    """Runs claimed jobs on one session. `tracker` (a concurrent worker's) learns when each job
    begins, to enforce its timeout and cancel it."""

    def __init__(
        self,
        manager: QueueManager,
        session: Session,
        user_code: UserCode,
        events: WorkerEvents,
        worker_id: str,
        *,
        slot: int = 0,
        tracker: Tracker | None = None,
    ):
        self.manager = manager
        self.session = session
        self.user_code = user_code
        self.events = events
        self.worker_id = worker_id
        self.slot = slot
        self.tracker = tracker
        self._refusals = ReplyLog(log)

    def run_one(self, delivery: Delivery, confirm: bool = False) -> Outcome | None:
        """Begin and run one claimed job; `confirm`: wait for its begin to be recorded first, so
        that a job cancelled while it waited is skipped. None when the worker recorded the
        outcome itself (a timeout or a cancel it enforced while this thread ran the job)."""
        return self.run_begun(self.begin(delivery, confirm))

    def begin(self, delivery: Delivery, confirm: bool = False) -> Delivery:
        """Record a claimed job as running (see Session.begin); the acknowledgement of the job
        before it, if still held back, goes in the same write."""
        # Retried like every queue step: a failover may cut the begin off (it is idempotent).
        began: Delivery = self.call(functools.partial(self.session.begin, delivery, confirm))
        return began

    def run_begun(self, delivery: Delivery) -> Outcome | None:
        """Run a job begin() returned: skipped if it was cancelled meanwhile or is no longer
        this worker's, else run with its outcome recorded (an acknowledgement is held back for
        the next write)."""
        outcome: Outcome | None
        if delivery.record.get("status") == NOT_HELD:
            log.warning(
                "no longer held by this worker (a failover, or its lease lapsed); skipped",
                extra=job_fields(delivery),
            )
            return None
        if delivery.record.get("status") == "cancelled":
            log.info("cancelled before it began; skipped", extra=job_fields(delivery))
            outcome = Outcome.CANCELLED
        else:
            with running_job(self.manager, delivery):  # current_job(), and the job on log lines
                outcome = self._process(delivery)
        if outcome is not None and not delivery.hook:  # a hook's job was counted at its death
            self.events.job_finished(delivery, outcome, self.slot)
        return outcome

    def _process(self, delivery: Delivery) -> Outcome | None:
        try:
            job = decode_job(delivery.body)
        except Exception as exc:  # noqa: BLE001 - a hostile payload fails its job, not the worker
            error = exc if isinstance(exc, JobDecodeError) else JobDecodeError(f"{exc!r}")
            log.error("job cannot run: %s", error, extra=job_fields(delivery))
            return self.record_failure(delivery, None, error, force=True)
        if delivery.hook:
            return self._finish_lost(delivery, job)
        self.events.job_started(delivery, job, self.slot)
        ticket = None if self.tracker is None else self.tracker.job_began(self.slot, delivery, job)
        started = time.monotonic()
        try:
            if ticket is None:
                returned = self.user_code.call(job.handle)
            else:
                returned = self.user_code.call_timed(job.handle, ticket.timeout, ticket.attach)
            result = encode_result(job, returned, self.manager.max_result)
        except WorkerShutdown:
            self.user_code.leave_if_forked(1)
            self.call(lambda: self.session.release(self.worker_id, delivery.queue, [delivery.id]))
            raise
        except BaseException as exc:  # noqa: BLE001 - a job's SystemExit/KeyboardInterrupt too
            self.user_code.leave_if_forked(1)
            if ticket is not None and not ticket.settle():
                return None
            return self.record_failure(delivery, job, exc, took=time.monotonic() - started)
        if ticket is not None and not ticket.settle():
            return None
        took = time.monotonic() - started
        self.session.complete(delivery, result)  # a lapsed lease: logged when the reply is read
        log.info("completed in %.3fs", took, extra=job_fields(delivery))
        return Outcome.COMPLETED

    def record_failure(
        self,
        delivery: Delivery,
        job: Job | None,
        exc: BaseException,
        *,
        force: bool = False,
        took: float = 0.0,
    ) -> Outcome:
        """Record a failed attempt: a retry after the job's backoff, or failed for good with
        its failed() hook run, or cancelled when it had been asked to stop."""
        error = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        fail_now, delay = _policy(job).decide(exc, delivery.attempts)
        force = force or fail_now
        outcome: Outcome = self.call(
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
        self.call(lambda: self.session.retry_or_fail(delivery, 0, "", "", force_fail=True))
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

    def release(self, queue: str, job_ids: Sequence[str]) -> None:
        """Hand back claimed jobs that will not run here, uncounted."""
        if job_ids:
            self.call(lambda: self.session.release(self.worker_id, queue, list(job_ids)))

    def flush(self) -> None:
        """Send what the session holds back (pipelined begins and acknowledgements)."""
        self.call(self.session.flush)

    def call(self, step: Callable[[], Any]) -> Any:
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


def _policy(job: Job | None) -> RetryPolicy:
    if job is None:
        return DEFAULT_POLICY
    try:
        return retry_policy(job)
    except Exception:  # noqa: BLE001 - a broken attribute must not stop the failure record
        return DEFAULT_POLICY
