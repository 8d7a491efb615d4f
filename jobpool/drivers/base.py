"""What a storage driver does, and the unit of work it hands out.

Two drivers keep the same promises: `drivers.redis.RedisDriver` (everything real) and
`drivers.memory.MemoryDriver` (one-process unit tests). The manager and the worker speak only this
protocol, so behaviour proven on one driver is the behaviour of the other.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# The record field `hook` of a job its worker's death failed for good, whose failed() hook a
# worker must still run: pending until a worker begins it, then started. A worker that dies in
# a started hook loses that hook; a pending one goes back to the queue (see lua/requeue.lua).
HOOK_PENDING = 1
HOOK_STARTED = 2


class Outcome(str, enum.Enum):
    """How an attempt ended, as recorded by the driver."""

    COMPLETED = "completed"
    RETRYING = "retrying"
    FAILED = "failed"
    LOST = "lost"  # the worker no longer held the job: its lease expired meanwhile


@dataclass(frozen=True)
class Delivery:
    """A job claimed by one worker: what `pop()` returns and `Worker.process()` takes."""

    id: str
    queue: str
    body: bytes
    record: dict[str, Any] = field(repr=False)
    worker_id: str = ""

    @property
    def attempts(self) -> int:
        """The attempt this delivery is (1 for the first run)."""
        return int(self.record.get("attempts", 0))

    @property
    def max_tries(self) -> int:
        return int(self.record.get("max_tries", 1))

    @property
    def hook_only(self) -> bool:
        """True when the job already failed for good (its worker died) and only its failed()
        hook is left to run."""
        return self.record.get("status") == "failed"

    @property
    def hook_started(self) -> bool:
        """True when this failed() hook delivery has begun (with its claim, or its start)."""
        return self.hook_only and self.record.get("hook") == HOOK_STARTED

    @property
    def job_class(self) -> str:
        return str(self.record.get("job", "?"))


@dataclass(frozen=True)
class Fetched:
    """One fetch: claimed jobs, when the next delayed job is due, and a peer whose lease lapsed."""

    deliveries: list[Delivery]
    next_due: float | None  # seconds from now, None when nothing is delayed
    stale_worker: str | None = None


@dataclass(frozen=True)
class Requeued:
    """What `requeue_worker` did with a dead worker's jobs.

    `handed`: jobs put back in the queue (one that failed for good goes back once, so that a
    worker runs its failed() hook), or -1 when the lease is still live and nothing was done.
    `failed`: (job id, job class) of the jobs this call failed for good, their worker's death
    having used up their attempts.
    """

    handed: int
    failed: tuple[tuple[str, str], ...] = ()


class Session(Protocol):
    """One worker's operations: claim, start, acknowledge. Not shared between threads.

    A session may send starts and acks without waiting (the Redis one does); `flush()` waits
    until everything sent has been applied.
    """

    def fetch(self, queue: str, worker_id: str, count: int = 1, lease: float = 30.0) -> Fetched: ...
    def start(self, delivery: Delivery) -> Delivery: ...
    def complete(self, delivery: Delivery) -> Any: ...
    def retry_or_fail(
        self, delivery: Delivery, delay: float, error: str, traceback: str, force_fail: bool = False
    ) -> Outcome: ...
    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int: ...
    def wait(
        self, queue: str, timeout: float, wakeup_fd: int | None = None, worker_id: str = ""
    ) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class Driver(Protocol):
    """Storage for queues. Every method is one atomic step; times come from the driver's clock."""

    def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int: ...
    def fetch(self, queue: str, worker_id: str, count: int = 1, lease: float = 30.0) -> Fetched: ...
    def session(self) -> Session: ...
    def wait(self, queue: str, timeout: float, wakeup_fd: int | None = None) -> None: ...
    def complete(self, delivery: Delivery) -> bool: ...
    def retry_or_fail(
        self, delivery: Delivery, delay: float, error: str, traceback: str, force_fail: bool = False
    ) -> Outcome: ...
    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int: ...
    def requeue_worker(
        self,
        queue: str,
        worker_id: str,
        reason: str,
        only_if_expired: bool = False,
        count_attempt: bool = True,
    ) -> Requeued: ...
    def renew(self, queue: str, worker_ids: Sequence[str], lease: float) -> None: ...
    def status(self, job_id: str) -> dict[str, Any] | None: ...
    def counts(self, queue: str) -> dict[str, int]: ...
    def failed_jobs(self, queue: str, start: int = 0, count: int = 100) -> list[dict[str, Any]]: ...
    def retry_failed(self, queue: str, job_ids: Sequence[str] | None = None) -> int: ...
    def delete(self, job_id: str) -> bool: ...
    def close(self) -> None: ...


def public_record(job_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as users see it: times in float unix seconds, internals dropped."""
    out: dict[str, Any] = {"id": job_id}
    for key, value in record.items():
        if key in ("hook",):
            continue
        if key.endswith("_at") and isinstance(value, (int, float)):
            out[key] = value / 1000.0
        else:
            out[key] = value
    if record.get("hook"):
        out["failed_hook_pending"] = True
    return out
