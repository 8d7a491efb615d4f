"""Exceptions that cross module boundaries, so callers can catch them by meaning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis


class JobpoolError(Exception):
    """Base of every error jobpool raises on purpose."""


class JobEncodeError(JobpoolError, TypeError):
    """A job cannot be stored: raised at push time, before anything reaches the queue."""


class JobDecodeError(JobpoolError):
    """A stored payload cannot become a job again; the job fails with this message."""


class UnknownJobError(JobDecodeError):
    """A payload names a class that is not a registered Job subclass in this process."""


class PayloadTooLargeError(JobEncodeError, ValueError):
    """A job's encoded body is above the configured `max_payload`."""


class WorkerLostError(JobpoolError):
    """The worker running a job died (killed, out of memory, lease expired).

    Passed to `Job.failed()` when such deaths used up the job's attempts.
    """


class JobTimeoutError(JobpoolError, TimeoutError):
    """A job ran past its timeout in a worker with `concurrency` above 1, which stops the job
    itself (an async task is cancelled) rather than being killed: passed to `failed()` when it
    used up the job's attempts."""


class Retry(JobpoolError):
    """Raised by a job to be retried: after `delay` seconds if given (no jitter, no cap), else
    after its usual backoff. It counts as an attempt, so the job still fails for good after
    `max_tries`; it is retried whatever `retry_on` and `dont_retry_on` say."""

    def __init__(self, delay: float | None = None, reason: str = "") -> None:
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0
        ):
            raise ValueError(f"Retry(delay=...) must be seconds >= 0 or None, got {delay!r}")
        self.delay = None if delay is None else float(delay)
        when = "" if delay is None else f" in {delay:g} s"
        super().__init__(reason or f"retry requested{when}")


class Fail(JobpoolError):
    """Raised by a job to fail for good now, whatever attempts are left; its `failed()` hook
    is called with this exception."""


class PushError(JobpoolError):
    """Storing new jobs failed part way (`push_many()`, which stores in batches).

    `stored` lists the ids of the jobs that were stored, each one complete; `unconfirmed` those
    of a batch whose reply a dropped connection cut off (each stored whole or not at all). No
    other job of the call was stored, so pushing the rest again queues nothing twice.
    """

    def __init__(
        self, message: str, stored: Sequence[str] = (), unconfirmed: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.stored = list(stored)
        self.unconfirmed = list(unconfirmed)


class RedisFullError(PushError, redis.exceptions.OutOfMemoryError):
    """Redis refused new jobs because it is full (maxmemory reached, nothing to evict).

    A subclass of redis-py's OutOfMemoryError, so existing handlers catch it. Workers go on
    finishing the jobs they hold, which frees memory.
    """


class ReplicationError(PushError):
    """Redis stored the jobs on its primary, but fewer replicas than `[redis] wait_replicas`
    confirmed them within `wait_timeout` (WAIT): they may or may not survive the loss of the
    primary. `unconfirmed` lists them; pushing them again is safe for unique jobs only, so an
    application that must not lose one checks `qm.get_job_status()` before it pushes again.
    `replicas` is how many replicas did confirm.
    """

    def __init__(
        self,
        message: str,
        stored: Sequence[str] = (),
        unconfirmed: Sequence[str] = (),
        replicas: int = 0,
    ) -> None:
        super().__init__(message, stored, unconfirmed)
        self.replicas = replicas


class ResultError(JobpoolError, ValueError):
    """What a job returned cannot be stored: not JSON, or above `max_result`. The attempt fails
    with this error (and is retried like any failure)."""


class JobFailed(JobpoolError):
    """`qm.result()` of a job that failed for good (or was cancelled).

    `error` is the recorded error (`"ExceptionType: message"`), `traceback` its traceback text
    (empty when there is none, as for a worker's death), `record` the whole status record.
    """

    def __init__(self, job_id: str, record: dict[str, Any]) -> None:
        self.job_id = job_id
        self.record = record
        self.error = str(record.get("error") or record.get("status", "failed"))
        self.traceback = str(record.get("traceback") or "")
        super().__init__(f"job {job_id} {record.get('status', 'failed')}: {self.error}")


class JobNotFoundError(JobpoolError, LookupError):
    """No job has this id: never pushed, deleted, or its record outlived its time to live."""
