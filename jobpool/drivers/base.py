"""What a storage driver does, and the unit of work it hands out.

Two drivers keep the same promises: `drivers.redis.RedisDriver` (everything real) and
`drivers.memory.MemoryDriver` (one-process unit tests). The manager, the master and the worker
speak only these protocols, so behaviour proven on one driver is the behaviour of the other. A
`Driver` serves producers, admins and the master; what a worker does with the jobs it claims
goes through its own `Session`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jobpool import defaults
from jobpool.limits import Limits

if TYPE_CHECKING:
    from jobpool.workflows.plan import FlowPlan

# The record field `hook` of a job its worker's death failed for good, whose failed() hook a
# worker must still run: pending until a worker begins it, then started. A worker that dies in
# a started hook loses that hook; a pending one goes back to the queue (see lua/requeue.lua).
HOOK_PENDING = 1
HOOK_STARTED = 2
HOOK_NAMES = {HOOK_PENDING: "pending", HOOK_STARTED: "started"}  # in status records

# The statuses in which a job holds its unique key: it waits or runs (as in lua/includes/common).
# `waiting`: a chain's later step or a batch's callback, until its workflow releases it.
WAITING_OR_RUNNING = frozenset({"queued", "delayed", "retrying", "processing", "waiting"})
# The statuses of a finished job: what `qm.result()` waits for (as in lua/watch.lua).
FINISHED = frozenset({"completed", "failed", "cancelled"})
# The status Session.begin() gives a delivery the worker turns out not to hold (its lease lapsed
# and a peer took it, or a failover lost the claim): the worker must not run it.
NOT_HELD = "not_held"


class Outcome(str, enum.Enum):
    """How an attempt ended, as recorded by the driver."""

    COMPLETED = "completed"
    RETRYING = "retrying"
    FAILED = "failed"
    LOST = "lost"  # the worker no longer held the job: its lease expired meanwhile
    CANCELLED = "cancelled"  # cancel() asked it to stop, or it was cancelled before it began


class Cancel(enum.Enum):
    """What `cancel()` found."""

    NOTHING = 0  # no such job, or it finished already
    CANCELLED = 1  # it waited (queued, delayed, retrying): cancelled, it never runs
    STOPPING = 2  # it runs: asked to stop (the master kills its worker)


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
    def hook(self) -> bool:
        """True when this delivery runs the job's failed() hook, not the job: the job already
        failed for good (its worker died), and a failed job is handed out for nothing else."""
        return self.record.get("status") == "failed"

    @property
    def hook_started(self) -> bool:
        """True when this failed() hook delivery has begun (with its claim, or `begin`)."""
        return self.hook and self.record.get("hook") == HOOK_STARTED

    @property
    def job_class(self) -> str:
        return str(self.record.get("job", "?"))


@dataclass(frozen=True)
class Fetched:
    """One fetch: claimed jobs, when the next delayed job is due, and a peer whose lease lapsed;
    or `paused`: the queue is paused, and nothing was claimed; or `limited_for`: its rate limit
    or max_running allows no claim for that many seconds."""

    deliveries: list[Delivery]
    next_due: float | None  # seconds from now, None when nothing is delayed
    stale_worker: str | None = None
    paused: bool = False
    limited_for: float | None = None


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


@dataclass(frozen=True)
class TickClaim:
    """What `schedule_tick` did with one tick of a schedule (see lua/schedule_tick.lua).

    `outcome`: "pushed" (`job_id` is the new job's), "claimed" (this tick or a later one was
    claimed already; `job_id` is the last job the schedule pushed, or ''), "skipped" (a missed
    tick not caught up, or one before the schedule's first claim) or "held" (the job holding
    its unique key waits or runs: `job_id`). `claimed`: the latest tick claimed, unix seconds.
    """

    outcome: str
    job_id: str
    claimed: float


class Session(Protocol):
    """One worker's operations: claim, begin, acknowledge. Not shared between threads.

    A session may send begins and acks without waiting (the Redis one does); `flush()` waits
    until everything sent has been applied.
    """

    def fetch(
        self,
        queue: str,
        worker_id: str,
        count: int = 1,
        lease: float = defaults.LEASE,
        held: Sequence[str] | None = None,
        limits: Limits | None = None,
    ) -> Fetched:
        """Claim up to `count` ready jobs, within the queue's `limits`. Whatever else the
        worker's list holds goes back to the queue first (a claim whose reply was lost),
        except, for a worker that runs jobs while it fetches, the ids in `held`."""
        ...

    def begin(self, delivery: Delivery, confirm: bool = False) -> Delivery:
        """Begin a job claimed in a batch. With `confirm`, wait until the queue has begun it: a
        job cancelled while it waited comes back with status `cancelled`, and must not run."""
        ...

    def complete(self, delivery: Delivery, result: str = "") -> None:
        """Record a job completed, with its result as JSON ('' for none)."""
        ...

    def retry_or_fail(
        self, delivery: Delivery, delay: float, error: str, traceback: str, force_fail: bool = False
    ) -> Outcome: ...
    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int: ...
    def wait(
        self,
        queue: str | Sequence[str],
        timeout: float,
        wakeup_fd: int | None = None,
        worker_id: str = "",
    ) -> list[str]:
        """Block until a queue (or any of several) may have work, `timeout` passes, or
        `wakeup_fd` is readable. Returns the queues that had work come (with `worker_id`, a
        job of each is already in that worker's list: its next claim of that queue takes it);
        maybe none, when it cannot tell."""
        ...

    def flush(self) -> None: ...
    def open(self, queue: str) -> None:
        """Connect now, for `queue`, so that the first job does not wait for it; a failure
        is left to the first step, which retries."""
        ...

    def close(self) -> None: ...


class Driver(Protocol):
    """Storage for queues: what producers, admins and the master do, and a `session()` per
    worker for the rest. Every method is one atomic step; times come from the driver's clock."""

    def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int: ...
    def enqueue_unique(
        self,
        queue: str,
        job: tuple[str, str, dict[str, Any]],
        unique_key: str,
        unique_for: float,
        delay: float = 0.0,
    ) -> tuple[str, bool]:
        """Store one job unless the job holding `unique_key` waits or runs: (the stored job's
        id, True), or (the holder's id, False). The new job holds the key until it finishes or
        is cancelled, for at most `unique_for` seconds."""
        ...

    def session(self, small_replies: bool = False) -> Session:
        """A worker's own line for its steps; `small_replies`: it never claims (a job
        thread's), so it may keep a smaller reply buffer."""
        ...

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
    def wait_finished(self, job_id: str, timeout: float | None) -> dict[str, Any] | None:
        """The job's record once it has finished (see FINISHED), or as it is when `timeout`
        seconds have passed (None: no limit); None if there is no such job. Blocks, without
        polling in a tight loop."""
        ...

    def aio(self) -> AsyncDriver:
        """What the async producer methods use, for the running event loop."""
        ...

    def counts(self, queue: str) -> dict[str, int]: ...
    def failed_jobs(self, queue: str, start: int = 0, count: int = 100) -> list[dict[str, Any]]: ...
    def retry_failed(self, queue: str, job_ids: Sequence[str] | None = None) -> int: ...
    def delete(self, job_id: str) -> bool: ...
    def cancel(self, job_id: str) -> Cancel: ...
    def uptime(self, queue: str) -> float:
        """Seconds since the server holding `queue` started: leases stored before a restart
        could not be renewed while it was down."""
        ...

    def set_paused(self, queue: str, paused: bool) -> bool:
        """Pause (workers claim nothing from the queue) or resume it; True if that changed
        anything."""
        ...

    def is_paused(self, queue: str) -> bool: ...
    def cancel_requests(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        """Those of `job_ids` (jobs workers run) that were cancelled: asked to stop, or
        cancelled before they began. The master kills their workers."""
        ...

    def schedule_tick(
        self,
        queue: str,
        name: str,
        tick: float,
        job: tuple[str, str, dict[str, Any]],
        catch_up: bool,
        grace: float,
        unique: tuple[str, float] | None = None,
    ) -> TickClaim:
        """Claim the tick at `tick` (unix seconds) of schedule `name` and push `job` to `queue`,
        in one step: of any number of calls for the same tick, one pushes. `unique`: the job's
        (unique key, seconds it may hold it)."""
        ...

    def schedule_state(self, queue: str, name: str) -> dict[str, Any] | None:
        """A schedule's latest claim and last run (`claimed`, `outcome`, `run_tick`, `run_job`,
        `run_at`, unix seconds), or None before its first claim."""
        ...

    def enqueue_flow(self, plan: FlowPlan) -> None:
        """Store a chain or batch and all of its jobs in one step (lua/enqueue_flow.lua)."""
        ...

    def flow(self, flow_id: str) -> dict[str, Any] | None:
        """A chain's or batch's status (workflows/status.py), or None if there is none."""
        ...

    def close(self) -> None: ...


class AsyncDriver(Protocol):
    """A driver's producer side for asyncio code (`qm.apush()`, `qm.aresult()`): the same steps
    as the Driver methods of the same names, awaited on the running event loop."""

    async def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int: ...
    async def enqueue_unique(
        self,
        queue: str,
        job: tuple[str, str, dict[str, Any]],
        unique_key: str,
        unique_for: float,
        delay: float = 0.0,
    ) -> tuple[str, bool]: ...
    async def wait_finished(self, job_id: str, timeout: float | None) -> dict[str, Any] | None: ...
    async def close(self) -> None: ...


def cancel_requested(record: dict[str, Any]) -> bool:
    """Whether a job a worker holds was cancelled: asked to stop while it ran, or cancelled
    before it began (a job claimed in a batch). Its worker must not go on with it."""
    return record.get("status") == "cancelled" or stop_requested(record)


def stop_requested(record: dict[str, Any]) -> bool:
    """Whether a running job was asked to stop (cancel): whatever outcome it then gets, it
    ends `cancelled` (stop_requested in lua/includes/common.lua, for the memory driver)."""
    return record.get("status") == "processing" and "cancel_requested_at" in record


def public_record(job_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as users see it: times in float unix seconds (each failed attempt's
    in `errors` too), and `hook` (see HOOK_PENDING) by name, "pending" or "started"."""
    out: dict[str, Any] = {"id": job_id}
    for key, value in record.items():
        if key == "hook":
            if value:
                out[key] = HOOK_NAMES.get(value, value)
        elif (
            key == "unique_lock" or key == "notify"
        ):  # the Redis key behind `unique_key`: the driver's business
            continue
        elif key.endswith("_at") and isinstance(value, (int, float)):
            out[key] = value / 1000.0
        elif key == "errors" and isinstance(value, list):  # each failed attempt's, `at` in ms
            out[key] = [
                {**e, "at": e["at"] / 1000.0}
                if isinstance(e, dict) and isinstance(e.get("at"), (int, float))
                else e
                for e in value
            ]
        else:
            out[key] = value
    return out
