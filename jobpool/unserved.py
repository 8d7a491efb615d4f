"""Queues that job classes send their jobs to but no worker serves.

`jobpool start` forks workers for the configured queues only, so a job pushed anywhere else waits
forever and nobody sees it. `jobpool check` and `jobpool start` say so up front, from this one
rule; `jobpool stats` shows such queues once they hold jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobpool.job import Job

if TYPE_CHECKING:
    from jobpool.config import Config


def served_queues(cfg: Config) -> list[str]:
    """The queues `jobpool start` runs workers for (those its workers serve), in config
    order."""
    return cfg.served_queues()


def unserved_job_warnings(cfg: Config) -> list[str]:
    """One message per queue that an imported Job class names (class attribute `queue`) and
    no worker of `cfg` serves; empty when every named queue has workers."""
    served = served_queues(cfg)
    by_queue: dict[str, list[str]] = {}
    for cls in _job_classes():
        if isinstance(cls.queue, str) and cls.queue not in served:
            by_queue.setdefault(cls.queue, []).append(cls.job_name)
    return [
        f"job class {', '.join(sorted(names))} sends its jobs to queue {queue!r}, which no "
        f"worker serves ({cfg.source} serves {', '.join(served)}): such jobs wait forever; "
        f"add [queues.{queue}]"
        for queue, names in sorted(by_queue.items())
    ]


def warns_here(cfg: Config, queue: str, index: int) -> bool:
    """True for the one worker that logs the warnings when every worker imports the job
    modules itself (no preload): the first slot of the first queue."""
    return index == 0 and queue == next(iter(cfg.queues), cfg.default_queue)


def _job_classes() -> Iterator[type[Job]]:
    """Every Job subclass defined so far, subclasses of subclasses included."""
    seen: set[type[Job]] = set()
    pending = list(Job.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.add(cls)
            pending.extend(cls.__subclasses__())
            yield cls
