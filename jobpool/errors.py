"""Exceptions that cross module boundaries, so callers can catch them by meaning."""

from __future__ import annotations

from collections.abc import Sequence

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
