"""Which queue manager and which job are current: the job a worker runs, and the manager that
`send_email.push(...)` and follow-up pushes use.

Inside `handle()`, `failed()` or a job function, the worker's manager and the job itself are
current (a context variable, set by the worker around each job, so asyncio tasks the job starts
see them too). Elsewhere the manager is the one the application chose with
`jobpool.configure(...)` or `qm.make_current()`; with none chosen, asking for it is an error
rather than a silent connection to some default server.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobpool.config import Config
    from jobpool.drivers.base import Delivery
    from jobpool.manager import QueueManager

_current: ContextVar[QueueManager | None] = ContextVar("jobpool_manager", default=None)
_running: ContextVar[tuple[QueueManager, Delivery] | None] = ContextVar("jobpool_job", default=None)
_default: QueueManager | None = None  # the process's chosen one: configure(), make_current()


@dataclass(frozen=True, slots=True)
class CurrentJob:
    """The job a worker is running, as `jobpool.current_job()` returns it."""

    id: str
    queue: str
    name: str
    """The job's class name, or its function's name."""
    attempt: int
    """This attempt, 1 for the first run."""
    max_tries: int
    enqueued_at: float
    """When it was pushed, unix seconds."""
    manager: QueueManager
    """The worker's manager, to push follow-up jobs with."""
    workflow: str | None = None
    """The id of the chain or batch this job belongs to (a step, a batch's job, or one of its
    callbacks: `qm.batch_status(current_job().workflow)`), else None."""


def current_job() -> CurrentJob:
    """The job being run (inside `handle()`, `failed()` or a job function)."""
    running = _running.get()
    if running is None:
        raise RuntimeError(
            "current_job() is only available while a worker runs a job "
            "(inside handle(), failed() or a @job function)"
        )
    manager, d = running
    created = d.record.get("created_at", 0) / 1000.0
    field = d.record.get("flow") or d.record.get("flow_cb")  # "KIND:ID" (workflows/plan.py)
    workflow = str(field).partition(":")[2] if field else None
    return CurrentJob(
        d.id, d.queue, d.job_class, d.attempts, d.max_tries, created, manager, workflow
    )


def running_delivery() -> Delivery | None:
    """The delivery being run, or None: for log filters, which must not raise."""
    running = _running.get()
    return None if running is None else running[1]


def current_manager() -> QueueManager:
    """The manager pushes use: the worker's inside a job, else the one the application chose
    with `jobpool.configure(...)` or `qm.make_current()`."""
    manager = _current.get()
    if manager is not None:
        return manager
    if _default is not None:
        return _default
    raise RuntimeError(
        "no current QueueManager: call jobpool.configure('jobpool.toml') (or qm.make_current()) "
        "once at startup, or pass manager=qm; inside a job the worker's manager is current"
    )


def configure(config: QueueManager | Config | str | os.PathLike[str]) -> QueueManager:
    """Choose the manager that `fn.push(...)` uses in this process, from a config file (or a
    loaded Config), or an existing QueueManager; returns it. A later call replaces it."""
    from jobpool.manager import QueueManager

    manager = config if isinstance(config, QueueManager) else QueueManager.from_config(config)
    configure_default(manager)
    return manager


def configure_default(manager: QueueManager | None) -> None:
    """Set (or, with None, forget) the process's chosen manager."""
    global _default
    _default = manager


class running_with:  # noqa: N801 - used as a function: `with running_with(manager):`
    """Makes `manager` the current one inside the block. A class, not a generator: it is entered
    around every job."""

    __slots__ = ("_manager", "_token")

    def __init__(self, manager: QueueManager):
        self._manager = manager

    def __enter__(self) -> None:
        self._token = _current.set(self._manager)

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


class running_job:  # noqa: N801 - used as a function: `with running_job(manager, delivery):`
    """Makes a delivery the current job, and `manager` the current manager, inside the block.
    Entered around every job, so it only keeps the pair: current_job() builds its answer."""

    __slots__ = ("_running", "_tokens")

    def __init__(self, manager: QueueManager, delivery: Delivery):
        self._running = (manager, delivery)

    def __enter__(self) -> None:
        self._tokens = (_running.set(self._running), _current.set(self._running[0]))

    def __exit__(self, *exc: object) -> None:
        _running.reset(self._tokens[0])
        _current.reset(self._tokens[1])
