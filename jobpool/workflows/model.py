"""What `chain()` and `batch()` build: the jobs of a workflow, checked when built, pushed with
`qm.push()` as one atomic step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jobpool.job import Job


@dataclass(frozen=True)
class Chain:
    """Jobs that run one after the other: each step once the one before it completed. A step
    that fails for good (or is cancelled) ends the chain, and the steps after it are recorded
    `cancelled`."""

    steps: tuple[Job, ...]
    queue: str | None = None

    kind = "chain"

    def jobs(self) -> list[tuple[str, Job]]:
        """(role, job) for each job the chain stores: "step" each."""
        return [("step", step) for step in self.steps]


@dataclass(frozen=True)
class Batch:
    """Jobs that run side by side, and up to three callbacks: `then` once all completed,
    `catch` once at the first that failed for good (or was cancelled), `finally_` once all
    finished, whatever their outcome (Laravel's Bus::batch)."""

    members: tuple[Job, ...]
    then: Job | None = None
    catch: Job | None = None
    finally_: Job | None = None
    queue: str | None = None

    kind = "batch"

    def jobs(self) -> list[tuple[str, Job]]:
        """(role, job) for each job the batch stores: "member", then each callback given."""
        out = [("member", member) for member in self.members]
        callbacks = (("then", self.then), ("catch", self.catch), ("finally", self.finally_))
        return out + [(role, job) for role, job in callbacks if job is not None]


Workflow = Chain | Batch


def chain(*steps: Job, queue: str | None = None) -> Chain:
    """A chain of jobs, pushed with `qm.push(chain(...))`, which returns the chain's id.

    Steps are Job instances; an `@job` function joins as `fn.s(*args, **kwargs)`. `queue`:
    where every step runs (default: the first step's queue; steps that name another queue are
    refused, see README "Workflows")."""
    if not steps:
        raise ValueError("chain() needs at least one job")
    return Chain(tuple(_checked("chain()", f"step {i + 1}", s) for i, s in enumerate(steps)), queue)


def batch(
    jobs: Iterable[Job],
    *,
    then: Job | None = None,
    catch: Job | None = None,
    finally_: Job | None = None,
    queue: str | None = None,
) -> Batch:
    """A batch of jobs, pushed with `qm.push(batch(...))`, which returns the batch's id; see
    Batch for the callbacks, `qm.batch_status(id)` for its counters."""
    members = tuple(_checked("batch()", f"job {i + 1}", j) for i, j in enumerate(jobs))
    if not members:
        raise ValueError("batch() needs at least one job")
    callbacks = {"then": then, "catch": catch, "finally_": finally_}
    for name, job in callbacks.items():
        if job is not None:
            _checked("batch()", name, job)
    return Batch(members, then, catch, finally_, queue)


def _checked(call: str, what: str, job: object) -> Job:
    if isinstance(job, Job):
        return job
    if isinstance(job, (Chain, Batch)):
        raise TypeError(f"{call}: {what} is a {job.kind}; workflows do not nest")
    if hasattr(job, "job_class"):  # an @job function itself, not one call of it
        raise TypeError(f"{call}: {what} is a job function; give one call of it: fn.s(...)")
    raise TypeError(f"{call}: {what} is {type(job).__name__}, not a Job (or fn.s(...))")
