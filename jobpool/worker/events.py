"""Hooks a worker calls as jobs start and finish, and what the standalone worker does with them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobpool.process import set_title, worker_title

if TYPE_CHECKING:
    from jobpool.drivers.base import Delivery, Outcome
    from jobpool.job import Job


class WorkerEvents:
    """What a worker tells its surroundings; the default does nothing.

    The standalone command sets process titles with it; a supervised child also reports to its
    master and stops itself when it outgrows its memory limit or its master is gone.
    """

    def job_started(self, delivery: Delivery, job: Job) -> None:
        """A job is about to run (the worker is busy)."""

    def job_finished(self, delivery: Delivery, outcome: Outcome) -> None:
        """A job reached an outcome (the worker is idle)."""

    def idle(self) -> None:
        """The worker is about to wait for work, or to stop: say what is still unsaid."""

    def stop_reason(self) -> str | None:
        """Asked after each job and each idle tick: a reason to stop now, or None."""
        return None


class TitleEvents(WorkerEvents):
    """Keeps the process title on what the worker does: ``jobpool: worker NAME busy CLASS ID``."""

    def __init__(self, name: str):
        self.name = name
        set_title(worker_title(name))

    def job_started(self, delivery: Delivery, job: Job) -> None:
        set_title(worker_title(self.name, (delivery.job_class, delivery.id)))

    def job_finished(self, delivery: Delivery, outcome: Outcome) -> None:
        set_title(worker_title(self.name))
