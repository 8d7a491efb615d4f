"""Job ids carry their queue, so `get_job_status(id)` finds the record from the id alone."""

from __future__ import annotations

import os
import time


def new_job_id(queue: str) -> str:
    """`QUEUE:` + a time-ordered hex token (ms clock, then 64 random bits)."""
    return f"{queue}:{time.time_ns() // 1_000_000:x}{os.urandom(8).hex()}"


def queue_of(job_id: str) -> str:
    """The queue named in a job id; ValueError for an id jobpool did not make."""
    queue, sep, token = job_id.rpartition(":")
    if not sep or not queue or not token:
        raise ValueError(f"not a jobpool job id: {job_id!r} (expected QUEUE:TOKEN)")
    return queue
