"""Exceptions that cross module boundaries, so callers can catch them by meaning."""

from __future__ import annotations


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
