"""QueueManager: the producer's API (push, later, status) over a storage driver."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import redis

from jobpool import defaults
from jobpool.drivers.base import Delivery, Driver
from jobpool.drivers.factory import make_driver
from jobpool.drivers.memory import MemoryDriver
from jobpool.errors import JobEncodeError, PayloadTooLargeError
from jobpool.ids import new_job_id, queue_of
from jobpool.job import Job, encode_job, job_settings
from jobpool.names import check_queue_name

if TYPE_CHECKING:
    from jobpool.config import Config

Delay = float | int | dt.timedelta | dt.datetime


class QueueManager:
    """Pushes jobs and answers for their status, from any process.

    `QueueManager(None)` keeps queues in memory (unit tests); a URL, "embedded" or a redis-py
    client selects Redis; `QueueManager.from_config(path)` reads `jobpool.toml`.
    """

    def __init__(
        self,
        connection: str | redis.Redis | Driver | None = None,
        *,
        prefix: str = defaults.PREFIX,
        default_queue: str = defaults.DEFAULT_QUEUE,
        completed_ttl: float = defaults.COMPLETED_TTL,
        failed_ttl: float = defaults.FAILED_TTL,
        max_payload: int = defaults.MAX_PAYLOAD,
    ):
        self.default_queue = check_queue_name(default_queue)
        self.max_payload = max_payload
        self.driver = make_driver(
            connection, prefix=prefix, completed_ttl=completed_ttl, failed_ttl=failed_ttl
        )
        self._pop_id = f"pop.{socket.gethostname()}.{os.getpid()}.{os.urandom(3).hex()}"
        self._pops = itertools.count()
        self._checked_queues: set[str] = set()

    @classmethod
    def from_config(cls, config: Config | str | os.PathLike[str]) -> QueueManager:
        """A manager for the driver, server and queues a config file describes."""
        from jobpool.config import Config, load_config

        cfg = config if isinstance(config, Config) else load_config(config)
        driver = make_driver(
            cfg.redis if cfg.driver == "redis" else None,
            prefix=cfg.redis.prefix,
            completed_ttl=cfg.jobs.completed_ttl,
            failed_ttl=cfg.jobs.failed_ttl,
        )
        return cls(driver, default_queue=cfg.default_queue, max_payload=cfg.jobs.max_payload)

    def queue_name(self, job: Job | None = None, queue: str | None = None) -> str:
        """The queue a call acts on: `queue` if given, else the job's own `queue` attribute,
        else the default queue. ValueError if that name breaks the rule of jobpool/names.py."""
        name = queue or getattr(job, "queue", None) or self.default_queue
        if name not in self._checked_queues:  # a name is checked once: push() is a hot path
            self._checked_queues.add(check_queue_name(name))
        return name

    def _prepare(self, job: Job, queue: str) -> tuple[str, str, dict[str, Any]]:
        body = encode_job(job)
        if type(job).job_name.startswith("__main__:") and not isinstance(self.driver, MemoryDriver):
            raise JobEncodeError(
                f"{type(job).__name__} is defined in __main__ (the script being run): workers "
                "import job classes by module and can never import __main__; move the class "
                "into a module listed in `imports`"
            )
        max_tries, _, _ = job_settings(job)
        if len(body) > self.max_payload:
            raise PayloadTooLargeError(
                f"{type(job).__name__}: payload is {len(body)} bytes, above max_payload "
                f"({self.max_payload} bytes); store large data elsewhere and pass a reference"
            )
        record = {"job": type(job).__name__, "queue": queue, "max_tries": max_tries}
        return new_job_id(queue), body, record

    def push(self, job: Job, queue: str | None = None) -> str:
        """Queue a job to run as soon as a worker is free; returns its id."""
        name = self.queue_name(job, queue)
        entry = self._prepare(job, name)
        self.driver.enqueue(name, [entry])
        return entry[0]

    def later(self, job: Job, delay: Delay, queue: str | None = None) -> str:
        """Queue a job to run after `delay` (seconds, timedelta, or an aware datetime)."""
        entry = self._prepare(job, self.queue_name(job, queue))
        self.driver.enqueue(queue_of(entry[0]), [entry], delay=_seconds(delay))
        return entry[0]

    def push_many(self, jobs: Iterable[Job], queue: str | None = None) -> list[str]:
        """Queue several jobs in one round trip per queue; all are checked before any is sent."""
        by_queue: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        ids: list[str] = []
        for job in jobs:
            name = self.queue_name(job, queue)
            entry = self._prepare(job, name)
            by_queue.setdefault(name, []).append(entry)
            ids.append(entry[0])
        for name, entries in by_queue.items():
            self.driver.enqueue(name, entries)
        return ids

    def get_job_status(self, job_id: str) -> dict[str, Any] | None:
        """The job's record (status, attempts, times, last error), or None if unknown/expired."""
        return self.driver.status(job_id)

    def pop(self, queue: str | None = None, timeout: float = 0.0) -> Delivery | None:
        """Claim the next job of a queue for `Worker(qm).process()`, waiting up to `timeout` s.

        The claim is held under a lease of its own that nothing renews: process it within the
        lease (30 s), or a running worker takes the job back as if its holder had died.
        """
        name = self.queue_name(queue=queue)
        deadline = time.monotonic() + timeout
        session = self.driver.session()  # a worker's step, on a line of its own for this call
        try:
            while True:
                worker_id = f"{self._pop_id}.{next(self._pops)}"
                fetched = session.fetch(name, worker_id)
                left = deadline - time.monotonic()
                if fetched.deliveries or left <= 0:
                    break
                due = fetched.next_due
                session.wait(name, left if due is None else min(left, due))
        finally:
            session.close()
        return fetched.deliveries[0] if fetched.deliveries else None

    def size(self, queue: str | None = None) -> int:
        """Jobs waiting in a queue: ready now plus delayed."""
        counts = self.driver.counts(self.queue_name(queue=queue))
        return counts["ready"] + counts["delayed"]

    def counts(self, queue: str | None = None) -> dict[str, int]:
        """ready, delayed, in_flight and failed counts of a queue."""
        return self.driver.counts(self.queue_name(queue=queue))

    def failed_jobs(
        self, queue: str | None = None, start: int = 0, count: int = 100
    ) -> list[dict[str, Any]]:
        """Failed jobs of a queue, oldest failure first, as status records."""
        return self.driver.failed_jobs(self.queue_name(queue=queue), start, count)

    def retry_failed(self, job_id: str) -> bool:
        """Queue one failed job again with a fresh set of attempts."""
        return self.driver.retry_failed(queue_of(job_id), [job_id]) == 1

    def retry_all_failed(self, queue: str | None = None) -> int:
        """Queue every failed job of a queue again; returns how many."""
        return self.driver.retry_failed(self.queue_name(queue=queue))

    def delete(self, job_id: str) -> bool:
        """Remove a waiting or finished job and its record (not one being processed)."""
        return self.driver.delete(job_id)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> QueueManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _seconds(delay: Delay) -> float:
    if isinstance(delay, dt.datetime):
        if delay.tzinfo is None:
            raise JobEncodeError("later() needs an aware datetime (with tzinfo), got a naive one")
        return max((delay - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0.0)
    if isinstance(delay, dt.timedelta):
        return max(delay.total_seconds(), 0.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise JobEncodeError(f"delay must be seconds, a timedelta or a datetime, got {delay!r}")
    return max(float(delay), 0.0)
