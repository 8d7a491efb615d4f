"""jobpool: reliable Redis job queues with a prefork supervisor."""

from jobpool.context import CurrentJob, configure, current_job, current_manager
from jobpool.drivers.base import Delivery, Outcome
from jobpool.errors import (
    Fail,
    JobDecodeError,
    JobEncodeError,
    JobFailed,
    JobNotFoundError,
    JobpoolError,
    JobTimeoutError,
    PayloadTooLargeError,
    ResultError,
    Retry,
    UnknownJobError,
    WorkerLostError,
)
from jobpool.functions import JobFunction, job
from jobpool.job import Job
from jobpool.manager import QueueManager
from jobpool.worker.loop import Worker
from jobpool.workflows import batch, chain

__all__ = [
    "CurrentJob",
    "Delivery",
    "Fail",
    "Job",
    "JobDecodeError",
    "JobEncodeError",
    "JobFailed",
    "JobFunction",
    "JobNotFoundError",
    "JobpoolError",
    "JobTimeoutError",
    "Outcome",
    "PayloadTooLargeError",
    "ResultError",
    "QueueManager",
    "Retry",
    "UnknownJobError",
    "Worker",
    "WorkerLostError",
    "batch",
    "chain",
    "configure",
    "current_job",
    "current_manager",
    "job",
]
__version__ = "0.1.0"
