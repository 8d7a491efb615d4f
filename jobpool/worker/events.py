"""Hooks a worker calls as jobs start and finish, and what the standalone worker does with them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from jobpool.process import set_title, worker_title

if TYPE_CHECKING:
    from jobpool.drivers.base import Delivery, Outcome
    from jobpool.job import Job


class WorkerEvents:
    """What a worker tells its surroundings; the default does nothing.

    The standalone command sets process titles with it; a supervised child also reports to its
    master and stops itself when it outgrows its memory limit or its master is gone. `slot` is
    the job slot (0 to concurrency - 1) that runs the job: with concurrency above 1 these are
    called from the slots' threads, so subclasses that keep state hold `self.lock`.
    """

    concurrency = 1
    lock = threading.Lock()  # replaced per instance by set_concurrency()

    def set_concurrency(self, slots: int) -> None:
        """The worker runs up to `slots` jobs at once (called before its first job)."""
        self.concurrency = slots
        self.lock = threading.Lock()

    def job_started(self, delivery: Delivery, job: Job, slot: int = 0) -> None:
        """A job is about to run (the slot is busy)."""

    def job_finished(self, delivery: Delivery, outcome: Outcome, slot: int = 0) -> None:
        """A job reached an outcome (the slot is free)."""

    def idle(self) -> None:
        """The worker is about to wait for work, or to stop: say what is still unsaid."""

    def paused(self) -> None:
        """The worker's queue is paused: it claims nothing until it is resumed."""

    def resumed(self) -> None:
        """The worker's queue is no longer paused."""

    def stop_reason(self) -> str | None:
        """Asked after each job and each idle tick: a reason to stop now, or None."""
        return None


class TitleEvents(WorkerEvents):
    """Keeps the process title on what the worker does: ``jobpool: worker NAME busy CLASS ID``,
    or with concurrency above 1 ``jobpool: worker NAME busy 5/8``."""

    def __init__(self, name: str):
        self.name = name
        self.busy = 0
        set_title(worker_title(name))

    def job_started(self, delivery: Delivery, job: Job, slot: int = 0) -> None:
        if self.concurrency == 1:
            set_title(worker_title(self.name, (delivery.job_class, delivery.id)))
            return
        with self.lock:
            self.busy += 1
            set_title(worker_title(self.name, slots=(self.busy, self.concurrency)))

    def paused(self) -> None:
        set_title(f"jobpool: worker {self.name} paused")

    def resumed(self) -> None:
        set_title(worker_title(self.name))

    def job_finished(self, delivery: Delivery, outcome: Outcome, slot: int = 0) -> None:
        if self.concurrency == 1:
            set_title(worker_title(self.name))
            return
        with self.lock:
            self.busy = max(0, self.busy - 1)
            busy = (self.busy, self.concurrency) if self.busy else None
            set_title(worker_title(self.name, slots=busy))
