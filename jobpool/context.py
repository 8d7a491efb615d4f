"""The queue manager of the job being run, so that a job can push follow-up jobs.

The worker sets it around `handle()` and `failed()`; outside a job there is none, and asking for
it is an error rather than a silent connection to some default server.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobpool.manager import QueueManager

_current: ContextVar[QueueManager | None] = ContextVar("jobpool_manager", default=None)


def current_manager() -> QueueManager:
    """The QueueManager of the worker running this job (inside `handle()` or `failed()`)."""
    manager = _current.get()
    if manager is None:
        raise RuntimeError(
            "current_manager() is only available while a worker runs a job; "
            "elsewhere build one with QueueManager.from_config(...)"
        )
    return manager


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
