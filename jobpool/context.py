"""The queue manager of the job being run, so that a job can push follow-up jobs.

The worker sets it around `handle()` and `failed()`; outside a job there is none, and asking for
it is an error rather than a silent connection to some default server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


@contextlib.contextmanager
def running_with(manager: QueueManager) -> Iterator[None]:
    token = _current.set(manager)
    try:
        yield
    finally:
        _current.reset(token)
