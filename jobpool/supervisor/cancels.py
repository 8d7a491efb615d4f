"""The master's look for cancelled jobs among those its workers run.

`qm.cancel(id)` of a running job only marks its record (lua/cancel.lua): the job runs in a
worker, and a job cannot be stopped safely from inside its own process. So once a second, the
master reads the records of the jobs its busy workers run (their boards say which: no system
call, one HMGET per queue), and kills the worker of each job asked to stop, as for a timeout;
requeue.lua then records the job `cancelled`. Redis being away or refusing only delays that to
the next look.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import redis

from jobpool.drivers.base import Driver
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.drivers.redis.replies import ReplyLog

log = logging.getLogger("jobpool.supervisor")
CHECK_EVERY = 1.0  # seconds between looks, while any worker is busy


class CancelWatch:
    def __init__(self, driver: Driver):
        self.driver = driver
        self.next_check = 0.0
        self._refusals = ReplyLog(log)

    def cancelled(self, now: float, running: Mapping[str, Sequence[str]]) -> set[str]:
        """The ids among `running` (queue -> ids of the jobs workers run) that were cancelled,
        once CHECK_EVERY has passed since the last look; else, or when Redis cannot answer,
        none (the next look tries again)."""
        if now < self.next_check:
            return set()
        self.next_check = now + CHECK_EVERY
        found: set[str] = set()
        try:
            for queue, job_ids in running.items():
                found |= self.driver.cancel_requests(queue, job_ids)
        except CONNECTION_ERRORS as exc:
            log.warning("cannot look for cancelled jobs (%s); will retry", exc)
        except redis.ResponseError as exc:
            self._refusals.report(exc, "looking for cancelled jobs (will retry)")
        return found
