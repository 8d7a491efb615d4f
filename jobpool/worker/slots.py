"""The job slots of a worker with `concurrency` above 1: N threads, each running one job at a
time on a runner (and a Redis connection) of its own, and what the worker's main thread needs
to know of them: when a slot frees up, and which job each runs since when.

Async jobs run as tasks on the worker's one event loop (see user_code.py), each awaited by the
thread of its slot. A task past its timeout, or cancelled, is cancelled by that thread or by the
main thread. A sync job cannot be stopped inside its thread: the main thread records its outcome
instead (RunningJob.take_over), and the thread's own record, should the job ever end, is dropped.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from jobpool.drivers.base import Delivery, Outcome
from jobpool.job import Job
from jobpool.worker.runner import JobRunner, WorkerShutdown

log = logging.getLogger("jobpool.worker")
# A job that waited longer than this since its claim has its begin confirmed before it runs.
CONFIRM_AFTER = 0.1


class RunningJob:
    """A job a slot runs, for the main thread to watch: since when, until when (its timeout),
    and its task when it is async."""

    __slots__ = ("slot", "delivery", "job", "started", "timeout", "future", "_lock", "_owner")

    def __init__(self, slot: int, delivery: Delivery, job: Job, timeout: float | None):
        self.slot = slot
        self.delivery = delivery
        self.job = job
        self.started = time.monotonic()
        self.timeout = timeout
        self.future: concurrent.futures.Future[Any] | None = None
        self._lock = threading.Lock()
        self._owner: str | None = None  # who records the outcome: "thread" or "worker"

    @property
    def deadline(self) -> float | None:
        return None if self.timeout is None else self.started + self.timeout

    def attach(self, future: concurrent.futures.Future[Any]) -> None:
        self.future = future

    def settle(self) -> bool:
        """The slot's thread records the outcome, unless the worker took it over."""
        return self._own("thread")

    def take_over(self) -> bool:
        """The main thread records the outcome (a sync job past its timeout, or cancelled),
        unless the slot's thread got there first."""
        return self._own("worker")

    @property
    def taken_over(self) -> bool:
        return self._owner == "worker"

    def _own(self, who: str) -> bool:
        with self._lock:
            if self._owner is None:
                self._owner = who
            return self._owner == who


class JobSlots:
    """`count` threads taking jobs from one local queue, which the main thread keeps filled
    with claimed jobs (a few more than the threads, so that a thread that ends a job starts the
    next at once). Each slot runs one job at a time; the main thread learns of finished ones
    through a pipe it can wait on together with its signal pipe."""

    def __init__(
        self,
        count: int,
        make_runner: Callable[[int], JobRunner],
        job_timeout: Callable[[Job], float | None],
    ):
        self.count = count
        self.busy = 0  # jobs handed out and not yet collected (main thread only)
        self.running: dict[int, RunningJob] = {}
        self._make_runner = make_runner
        self._job_timeout = job_timeout
        self._work: queue.SimpleQueue[tuple[Delivery, float] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[str, Outcome | None]] = queue.SimpleQueue()
        self._freed_r, self._freed_w = os.pipe()
        os.set_blocking(self._freed_r, False)
        self._threads: list[threading.Thread] = []
        self._main_waits = False  # the main thread waits on _freed_r: a job's end writes to it
        self._wake_at = 1  # ... for this many ends

    @property
    def free(self) -> int:
        """Threads with no job to run (negative: jobs waiting for a thread)."""
        return self.count - self.busy

    def start(self) -> None:
        for slot in range(self.count):
            # The runner, and its connection, are made here on the main thread: a connection
            # opened on the slot's own thread costs that thread about 60 KB more (a deeper
            # stack for the name lookup, allocations in a malloc arena of its own).
            runner = self._make_runner(slot)
            thread = threading.Thread(
                target=self._serve,
                args=(slot, runner),
                name=f"jobpool: job slot {slot}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, delivery: Delivery, claimed_at: float) -> None:
        self.busy += 1
        self._work.put((delivery, claimed_at))

    def take_back(self) -> list[Delivery]:
        """The jobs no thread has taken yet, taken out of the local queue (to hand back)."""
        taken: list[Delivery] = []
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                taken.append(item[0])
        self.busy -= len(taken)
        return taken

    def collect(self) -> list[tuple[str, Outcome | None]]:
        """The ids and outcomes of the jobs that ended since the last call (None: recorded by
        the main thread), and their slots counted free again."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._freed_r, 4096)
        ended: list[tuple[str, Outcome | None]] = []
        while True:
            try:
                ended.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.busy -= len(ended)
        return ended

    def wait(self, timeout: float, wakeup_fd: int | None, ends: int = 1) -> None:
        """Until `ends` jobs ended since the last collect(), a signal arrives, or `timeout`
        seconds pass."""
        fds = [self._freed_r] if wakeup_fd is None else [self._freed_r, wakeup_fd]
        self._wake_at = max(1, ends)
        self._main_waits = True  # before the look below: a job that ends after it writes
        try:
            if self._done.qsize() < self._wake_at:
                select.select(fds, [], [], max(0.0, timeout))
        finally:
            self._main_waits = False

    def snapshot(self) -> list[RunningJob]:
        return list(self.running.values())

    def stuck(self) -> int:
        """Jobs whose outcome the main thread recorded while their thread still runs them."""
        return sum(1 for job in self.snapshot() if job.taken_over)

    def stop(self) -> None:
        """Let the threads end once they finish what they run (they are daemons: a stuck one
        does not hold the process)."""
        for _ in self._threads:
            self._work.put(None)

    # -- the Tracker the runners call, from their threads ----------------------------------------

    def job_began(self, slot: int, delivery: Delivery, job: Job) -> RunningJob:
        running = RunningJob(slot, delivery, job, self._job_timeout(job))
        self.running[slot] = running
        return running

    # -- each slot's thread ----------------------------------------------------------------------

    def _serve(self, slot: int, runner: JobRunner) -> None:
        """Run jobs from the local queue until told to stop. When the next job is already
        there as one ends, the ended job's acknowledgement and the next job's begin go to
        Redis in one write and are read back together: a round trip per job, and the begin
        confirmed, so that a job cancelled while it waited is skipped."""
        try:
            item = self._work.get()
            begun: Delivery | None = None  # item's job, begun with the last acknowledgement
            while item is not None:
                delivery, claimed_at = item
                outcome: Outcome | None = None
                at_hand, after = False, None  # the next item, if the local queue had one
                try:
                    if begun is None:
                        # A job that waited in the local queue has its begin confirmed, so
                        # that a cancel that came meanwhile is seen (see CONFIRM_AFTER).
                        confirm = time.monotonic() - claimed_at > CONFIRM_AFTER
                        begun = runner.begin(delivery, confirm)
                    outcome = runner.run_begun(begun)
                    begun = None
                    at_hand, after = self._next_at_hand()
                    if after is not None:
                        begun = runner.begin(after[0], confirm=True)  # with this job's ack
                    # This job's outcome is recorded before its end is reported: the main
                    # thread then stops naming it held, and a claim hands back what is not.
                    # (A job its claim began needs no begin, so the ack may still wait.)
                    runner.flush()
                except WorkerShutdown:  # pragma: no cover - signals reach the main thread only
                    begun = None
                except BaseException:  # noqa: BLE001 - the slot must serve on
                    log.exception("job slot %d: unexpected error", slot)
                    begun = None
                finally:
                    self.running.pop(slot, None)
                    self._ended(delivery.id, outcome)
                item = after if at_hand else self._work.get()
        finally:
            with contextlib.suppress(Exception):
                runner.session.close()

    def _next_at_hand(self) -> tuple[bool, tuple[Delivery, float] | None]:
        """(True, the next item of the local queue: a job, or None to stop) if there is one
        now, else (False, None)."""
        try:
            return True, self._work.get_nowait()
        except queue.Empty:
            return False, None

    def _ended(self, job_id: str, outcome: Outcome | None) -> None:
        """Tell the main thread a job ended. Its pipe is written only while it waits for as
        many ends as have come: a busy worker's main thread wakes once per claim it makes,
        not once per job."""
        self._done.put((job_id, outcome))
        if self._main_waits and self._done.qsize() >= self._wake_at:
            with contextlib.suppress(OSError):
                os.write(self._freed_w, b".")
