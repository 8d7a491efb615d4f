"""The worker: claim jobs, run them (runner.py), record their outcomes; drain on SIGTERM.

One worker serves one queue in one process. Under `jobpool start` the supervisor forks it and
renews its lease; run alone (`jobpool worker`), a forked lease keeper renews it instead, so that
a job holding the CPU or the GIL cannot let the lease lapse.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from jobpool import defaults
from jobpool.backoff import Backoff
from jobpool.drivers.base import Delivery, Fetched, Outcome
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.drivers.redis.replies import ReplyLog
from jobpool.limits import Limits
from jobpool.process import same_file
from jobpool.worker.claim_order import ClaimOrder
from jobpool.worker.events import WorkerEvents
from jobpool.worker.lease_keeper import LeaseKeeper
from jobpool.worker.runner import REFUSED_BACKOFF_CAP, JobRunner, WorkerShutdown
from jobpool.worker.user_code import UserCode

if TYPE_CHECKING:
    from jobpool.manager import QueueManager

log = logging.getLogger("jobpool.worker")
T = TypeVar("T")
IDLE_TICK = 1.0  # most seconds an idle worker waits before it looks for expired leases again
BATCH_SECONDS = 0.05  # a claimed job should wait about this long at most behind its batch
# A job of a batch that waited longer than this behind the jobs before it has its begin confirmed
# (one round trip) before it runs, so that a cancel that came meanwhile is seen. A batch of short
# jobs (about BATCH_SECONDS of work) never waits that long, and keeps its begins pipelined.
CONFIRM_AFTER = 2 * BATCH_SECONDS


def new_worker_id(queue: str) -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{os.urandom(3).hex()}"


class Worker:
    """Runs the jobs of one queue, one at a time (ThreadedWorker, in threaded.py, runs many).

    `process(delivery)` runs one claimed job (unit tests call it directly); `run()` is the loop.
    """

    def __init__(
        self,
        manager: QueueManager,
        queue: str | None = None,
        *,
        worker_id: str | None = None,
        lease: float = defaults.LEASE,
        prefetch: int = defaults.PREFETCH,
        events: WorkerEvents | None = None,
        limits: Limits | Mapping[str, Limits] | None = None,
        serve: Sequence[str] = (),
        weights: Sequence[int] = (),
    ):
        self.manager = manager
        self.driver = manager.driver
        self.session = manager.driver.session()
        # The queues this worker takes jobs from, highest priority first; `queue` is the first.
        self.queues = [manager.queue_name(queue=q) for q in serve] or [
            manager.queue_name(queue=queue)
        ]
        self.queue = self.queues[0]
        self.order = ClaimOrder(self.queues, weights)
        self._woken: list[str] = []  # the queues whose job ended the last idle wait
        self.limits: dict[str, Limits] = {}  # each queue's rate_limit and max_running, if any
        for name in self.queues:
            limit = limits.get(name) if isinstance(limits, Mapping) else limits
            if limit:
                self.limits[name] = limit
        self.worker_id = worker_id or new_worker_id(self.queue)
        self.lease = lease
        self.prefetch = prefetch
        self.events = events or WorkerEvents()
        self.stopping = False
        self.stopped_because: str | None = None
        self.jobs_done = 0
        self._job_seconds = BATCH_SECONDS / 8  # running estimate of one job's time; 8 at first
        self._wakeup_r: int | None = None
        self._wakeup_intact: Callable[[], bool] = lambda: True
        self._exiting = False  # handing back at exit: a late signal must not cut that short
        self.user_code = self._make_user_code()
        self.runner = JobRunner(manager, self.session, self.user_code, self.events, self.worker_id)
        self._refusals = ReplyLog(log)
        self._unreachable = Backoff()
        self._paused = False  # the queue was paused at the last claim
        self._lost_redis_at = -float("inf")  # when a claim last found Redis unreachable
        self._reap_after = 0.0  # no reaping before then: Redis restarted less than a lease ago
        self._refused = Backoff(first=0.5, cap=REFUSED_BACKOFF_CAP)

    def _make_user_code(self) -> UserCode:
        return UserCode()

    # -- one job -----------------------------------------------------------------------------

    def process(self, delivery: Delivery) -> Outcome | None:
        """Run one claimed job to its outcome: completed, retrying or failed (recorded in the
        queue before this returns)."""
        outcome = self._run_one(delivery)
        self.runner.flush()
        return outcome

    def _run_one(self, delivery: Delivery, confirm: bool = False) -> Outcome | None:
        """Begin and run one claimed job; `confirm`: wait for its begin to be recorded first, so
        that a job cancelled while it waited in the batch is skipped (see CONFIRM_AFTER)."""
        self.runner.session = self.session
        return self.runner.run_one(delivery, confirm)

    def _call(self, step: Callable[[], Any]) -> Any:
        return self.runner.call(step)

    # -- the loop ----------------------------------------------------------------------------

    def run(
        self,
        *,
        max_jobs: int = 0,
        burst: bool = False,
        install_signals: bool = True,
        keep_lease: bool = True,
    ) -> int:
        """Take jobs until stopped (SIGTERM/SIGINT), `max_jobs` are done, or, with `burst`,
        nothing is left to do now. Returns the number of jobs run.

        `keep_lease=False` when a supervisor renews this worker's lease."""
        if install_signals:
            self.install_signals()
        keeper = None
        if keep_lease:
            keeper = LeaseKeeper(self._renew, self.lease / 3, f"jobpool: lease keeper {self.queue}")
            keeper.start()
        self.user_code.adopt_process()
        try:
            return self._take_jobs(max_jobs, burst)
        except WorkerShutdown as stop:
            self.stopped_because = f"second {stop}"
            return self.jobs_done
        finally:
            self._exiting = True
            self.user_code.leave_if_forked(1)
            self.events.idle()
            if keeper is not None:
                keeper.stop()
            self._hand_back_all()
            self.user_code.close()

    def _hand_back_all(self) -> None:
        """Leave nothing behind: hand back, uncounted, whatever this worker still holds (a claim
        whose reply a second signal cut off) and drop its lease entry, so no peer has to reap
        it. Harmless if Redis is away: the lease then lapses and a peer does it."""
        with contextlib.suppress(*CONNECTION_ERRORS, redis.ResponseError):
            self.session.flush()
        for queue in self.queues:
            with contextlib.suppress(*CONNECTION_ERRORS, redis.ResponseError):
                self.driver.requeue_worker(
                    queue, self.worker_id, "worker stopped", count_attempt=False
                )
        self.session.close()

    def _renew(self) -> None:
        for queue in self.queues:
            self.driver.renew(queue, [self.worker_id], self.lease)

    def _take_jobs(self, max_jobs: int, burst: bool) -> int:
        while not self.stopping:
            fetched = self._guarded(lambda: self._claim(self._batch_size()), max_jobs)
            if fetched is None:
                continue
            if fetched.paused:
                self._wait_paused(max_jobs)
                continue
            self._resumed()
            if fetched.limited_for is not None:
                self._pause(min(fetched.limited_for, IDLE_TICK))
                self._check_stop(max_jobs)
                continue
            if not fetched.deliveries:
                if burst and fetched.next_due is None:
                    break
                self._guarded(functools.partial(self._idle, fetched.next_due), max_jobs)
                self._check_stop(max_jobs)
                continue
            started, before = time.monotonic(), self.jobs_done
            self._run_batch(fetched.deliveries, max_jobs)
            self._learn(self.jobs_done - before, time.monotonic() - started)
        return self.jobs_done

    def _wait_paused(self, max_jobs: int) -> None:
        """The queue is paused: look again in a second (a stop signal cuts the wait short).
        Not a blocking wait on the queue: a push would wake it for nothing."""
        self.events.idle()
        if not self._paused:
            self._paused = True
            self.events.paused()
            which = "queue " + self.queue if len(self.queues) == 1 else "every queue served"
            log.info("%s is paused: claiming nothing until it is resumed", which)
        self._pause(IDLE_TICK)
        self._check_stop(max_jobs)

    def _resumed(self) -> None:
        if self._paused:
            self._paused = False
            self.events.resumed()
            log.info("resumed: claiming again")

    def _claim(self, count: int) -> Fetched:
        """Claim up to `count` jobs from the first queue served that has any (in priority
        order, or drawn by weight), reaping in passing peers whose lease lapsed. Nothing
        claimed: paused only if every queue is; limited by the soonest a limit allows; else
        the soonest a delayed job is due."""
        if len(self.queues) == 1:
            return self._claim_from(self.queue, count)
        due: list[float] = []
        limited: list[float] = []
        paused = 0
        # A queue whose job ended our idle wait first: that job is in this worker's list for
        # it, out of other workers' reach, until this worker claims from that queue.
        woken, self._woken = self._woken, []
        order = self.order.next()
        for queue in [*woken, *(q for q in order if q not in woken)]:
            fetched = self._claim_from(queue, count)
            if fetched.deliveries:
                return fetched
            paused += fetched.paused
            if fetched.limited_for is not None:
                limited.append(fetched.limited_for)
            if fetched.next_due is not None:
                due.append(fetched.next_due)
        if paused == len(self.queues):
            return Fetched([], None, paused=True)
        if limited:
            return Fetched([], None, limited_for=min(limited + due))
        return Fetched([], min(due, default=None))

    def _claim_from(self, queue: str, count: int) -> Fetched:
        fetched = self.session.fetch(
            queue, self.worker_id, count, self.lease, self._held(), self.limits.get(queue)
        )
        if fetched.stale_worker:
            self._reap(queue, fetched.stale_worker)
        return fetched

    def _held(self) -> list[str] | None:
        """The ids a fetch must leave in this worker's hands: none here, as a one-job worker
        fetches with empty hands (see ThreadedWorker)."""
        return None

    def _guarded(self, step: Callable[[], T], max_jobs: int) -> T | None:
        """`step()` (a claim, an idle wait), or None when Redis is away or refuses: this has
        then paused with backoff, and the loop tries again."""
        try:
            value = step()
        except CONNECTION_ERRORS as exc:
            self._lost_redis_at = time.monotonic()
            wait = self._unreachable.next()
            log.warning("redis unreachable (%s); reconnecting in %.1fs", exc, wait)
            self._pause(wait)
            return None
        except redis.ResponseError as exc:  # refused (full, read-only, ...): wait, not die
            self._refusals.report(exc, "a claim (retrying with backoff)")
            self._pause(self._refused.next())
            self._check_stop(max_jobs)
            return None
        self._unreachable.reset()
        self._refused.reset()
        return value

    def _pause(self, seconds: float) -> None:
        """Sleep between tries, cut short by a stop signal so that a drain never waits on it."""
        wakeup = self._wakeup_fd()
        if wakeup is None:
            time.sleep(seconds)
        else:
            select.select([wakeup], [], [], seconds)
            self._drain_wakeup()

    def _batch_size(self) -> int:
        """Claim as many jobs as run in about BATCH_SECONDS (at most `prefetch`): many short jobs
        per round trip, while a batch of slow ones never keeps its last job waiting for long."""
        return max(1, min(self.prefetch, int(BATCH_SECONDS / self._job_seconds)))

    def _learn(self, jobs: int, seconds: float) -> None:
        if jobs:
            self._job_seconds = 0.7 * self._job_seconds + 0.3 * max(seconds / jobs, 1e-6)

    def _check_stop(self, max_jobs: int = 0) -> None:
        """Asked after every job and idle tick: leave now? (`max_jobs` of run(), the events'
        memory and recycling limits, an orphaned child)."""
        if max_jobs and self.jobs_done >= max_jobs:
            self.stopping = True
            return
        reason = self.events.stop_reason()
        if reason is not None:
            self.stopped_because = reason
            self.stopping = True

    def _run_batch(self, deliveries: list[Delivery], max_jobs: int = 0) -> None:
        claimed = time.monotonic()
        for i, delivery in enumerate(deliveries):
            if self.stopping:
                rest = [d.id for d in deliveries[i:]]
                queue = deliveries[i].queue  # one claim, one queue
                self._call(functools.partial(self.session.release, self.worker_id, queue, rest))
                return
            self._run_one(delivery, i > 0 and time.monotonic() - claimed > CONFIRM_AFTER)
            self.jobs_done += 1
            self._check_stop(max_jobs)

    def _idle(self, next_due: float | None) -> None:
        timeout = IDLE_TICK if next_due is None else min(next_due, IDLE_TICK)
        self.events.idle()
        if timeout > 0:
            woken = self.session.wait(self.queues, timeout, self._wakeup_fd(), self.worker_id)
            self._woken = [q for q in self.order.next() if q in woken]
            self._drain_wakeup()

    def _reap(self, queue: str, stale: str) -> None:
        """Hand back the jobs of a peer whose lease lapsed: it died unseen. Not right after
        Redis was away (for us, or restarted for all): then every lease lapsed because nobody
        could renew it, and live peers get a lease's time to renew theirs first."""
        now = time.monotonic()
        if now - self._lost_redis_at < self.lease or now < self._reap_after:
            return
        uptime = self.driver.uptime(queue)
        if uptime < self.lease:
            self._reap_after = now + self.lease - uptime  # ask the server again only then
            return
        requeued = self.driver.requeue_worker(
            queue, stale, "worker lost: its lease expired", only_if_expired=True
        )
        if requeued.handed > 0:
            log.warning(
                "worker %s stopped renewing its lease; %d job(s) handed back",
                stale,
                requeued.handed,
                extra={"queue": queue},
            )

    def stop(self) -> None:
        """Finish the current job, take no new one."""
        self.stopping = True

    # -- signals -----------------------------------------------------------------------------

    def install_signals(self, supervised: bool = False) -> None:
        """SIGTERM and SIGINT: finish the job, take no new one; a second one: stop at once.

        A supervised worker ignores SIGINT: Ctrl-C reaches the whole process group, and the
        master turns it into the SIGTERM of a drain; counting both would stop the job at once.
        """
        self._wakeup_pipe()
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, signal.SIG_IGN if supervised else self._on_stop_signal)

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        if self.stopping and not self._exiting:
            raise WorkerShutdown(signal.Signals(signum).name)
        self.stopping = True

    def _wakeup_pipe(self) -> None:
        """A pipe the C signal handler writes to, so that a signal ends an idle wait at once."""
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wakeup_r, self._wakeup_intact = r, same_file(r)
        signal.set_wakeup_fd(w)

    def _wakeup_fd(self) -> int | None:
        """The read end of the wake-up pipe, made anew if a job closed it (its number may be a
        socket's by now: reading it would steal that socket's data)."""
        if self._wakeup_r is not None and not self._wakeup_intact():
            self._wakeup_pipe()
        return self._wakeup_r

    def _drain_wakeup(self) -> None:
        if self._wakeup_r is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wakeup_r, 512)
