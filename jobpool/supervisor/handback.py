"""The master's work in Redis: hand a dead worker's jobs back at once, and renew the leases of the
live ones.

Redis may be unreachable or refuse (full, a read-only replica, a Cluster redirect). Neither is
fatal to the master, and nothing is dropped: a requeue that could not be done is kept and tried
again every tick, a renewal every second, and each kind of refusal is logged once with what it
means (see drivers/redis/replies.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from jobpool.drivers.base import Driver, Requeued
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.drivers.redis.replies import ReplyLog

log = logging.getLogger("jobpool.supervisor")
RETRY_RENEWAL = 1.0  # seconds before a renewal that failed is tried again


@dataclass(frozen=True)
class PendingRequeue:
    """A dead worker whose jobs could not be handed back yet."""

    queue: str
    worker_id: str
    reason: str
    count_attempt: bool


class Handback:
    def __init__(self, driver: Driver):
        self.driver = driver
        self.pending: list[PendingRequeue] = []
        self.next_renewal = 0.0
        self._refusals = ReplyLog(log)

    def requeue(
        self, queue: str, worker_id: str, reason: str, count_attempt: bool
    ) -> Requeued | None:
        """Hand back what the dead worker held; None (and kept pending) if Redis would not."""
        try:
            return self.driver.requeue_worker(queue, worker_id, reason, count_attempt=count_attempt)
        except CONNECTION_ERRORS as exc:
            log.warning("cannot requeue the jobs of %s yet (%s); will retry", worker_id, exc)
        except redis.ResponseError as exc:
            self._refusals.report(exc, f"requeueing the jobs of {worker_id} (will retry)")
        self.pending.append(PendingRequeue(queue, worker_id, reason, count_attempt))
        return None

    def retry_pending(self) -> list[tuple[str, Requeued]]:
        """Try the pending requeues again; (queue, what was done) for those that went through."""
        pending, self.pending = self.pending, []
        done = []
        for p in pending:
            requeued = self.requeue(p.queue, p.worker_id, p.reason, p.count_attempt)
            if requeued is not None:
                done.append((p.queue, requeued))
        return done

    def renew(self, now: float, workers: Mapping[str, tuple[Sequence[str], float]]) -> None:
        """Renew, once due, the leases of `workers` (queue -> (worker ids, lease seconds)), and
        plan the next renewal at a third of the shortest lease."""
        if now < self.next_renewal:
            return
        try:
            for queue, (worker_ids, lease) in workers.items():
                self.driver.renew(queue, worker_ids, lease)
        except CONNECTION_ERRORS as exc:
            log.warning("cannot renew worker leases (%s); retrying", exc)
        except redis.ResponseError as exc:
            self._refusals.report(exc, "renewing worker leases (retrying every second)")
        else:
            leases = [lease for _, lease in workers.values()]
            self.next_renewal = now + (min(leases) / 3 if leases else RETRY_RENEWAL)
            return
        self.next_renewal = now + RETRY_RENEWAL
