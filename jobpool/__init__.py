"""jobpool: reliable Redis job queues with a prefork supervisor."""

from jobpool.context import current_manager
from jobpool.drivers.base import Delivery, Outcome
from jobpool.errors import (
    JobDecodeError,
    JobEncodeError,
    JobpoolError,
    PayloadTooLargeError,
    UnknownJobError,
    WorkerLostError,
)
from jobpool.job import Job
from jobpool.manager import QueueManager
from jobpool.worker.loop import Worker

__all__ = [
    "Delivery",
    "Job",
    "JobDecodeError",
    "JobEncodeError",
    "JobpoolError",
    "Outcome",
    "PayloadTooLargeError",
    "QueueManager",
    "UnknownJobError",
    "Worker",
    "WorkerLostError",
    "current_manager",
]
__version__ = "0.1.0"
