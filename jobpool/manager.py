"""QueueManager: the producer's API (push, later, status) over a storage driver."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from jobpool import defaults
from jobpool.context import configure_default
from jobpool.drivers.base import FINISHED, Cancel, Delivery, Driver
from jobpool.drivers.factory import make_driver
from jobpool.drivers.memory import MemoryDriver
from jobpool.errors import (
    JobEncodeError,
    JobFailed,
    JobNotFoundError,
    PayloadTooLargeError,
    PushError,
)
from jobpool.ids import new_job_id, queue_of
from jobpool.job import Job, encode_job, job_settings
from jobpool.limits import class_limit
from jobpool.names import check_queue_name
from jobpool.retry import retry_policy
from jobpool.unique import unique_options
from jobpool.workflows import chains
from jobpool.workflows.model import Batch, Chain, Workflow
from jobpool.workflows.plan import plan

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
        max_result: int = defaults.MAX_RESULT,
    ):
        self.default_queue = check_queue_name(default_queue)
        self.max_payload = max_payload
        self.max_result = max_result  # what a job may return, in bytes of JSON (see Worker)
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
        return cls(
            driver,
            default_queue=cfg.default_queue,
            max_payload=cfg.jobs.max_payload,
            max_result=cfg.jobs.max_result,
        )

    def make_current(self) -> QueueManager:
        """Make this the manager `fn.push(...)` of a `@job` function uses in this process
        (as `jobpool.configure(self)` does); returns it. Inside a job the worker's wins."""
        configure_default(self)
        return self

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
        retry_policy(job)  # a wrong retry setting is refused now, not at the first failure
        if len(body) > self.max_payload:
            raise PayloadTooLargeError(
                f"{type(job).__name__}: payload is {len(body)} bytes, above max_payload "
                f"({self.max_payload} bytes); store large data elsewhere and pass a reference"
            )
        record: dict[str, Any] = {"job": type(job).__name__, "queue": queue, "max_tries": max_tries}
        limit = _class_limit(type(job))
        if limit is not None:
            record["limit"] = limit  # the class's own rate_limit / max_running (fetch.lua)
        return new_job_id(queue), body, record

    def push(
        self,
        job: Job | Workflow,
        queue: str | None = None,
        *,
        unique_key: str | None = None,
        unique_for: float | None = None,
    ) -> str:
        """Queue a job to run as soon as a worker is free; returns its id.

        With `unique_key` (or a class with `unique = True`, keyed by class and arguments): if the
        job holding that key is queued, delayed, retrying or processing, nothing is queued and
        that job's id is returned. A new job holds the key until it completes, fails or is
        cancelled, for at most `unique_for` seconds (default: the class's `unique_for`, 1 day).
        `push_unique()` tells which happened.

        A `chain(...)` or `batch(...)` is stored whole in one step; its id is returned (see
        README "Workflows"; `queue` runs all of its jobs there)."""
        if isinstance(job, (Chain, Batch)):
            return self._push_flow(job, queue, unique_key)
        return self._store(self._plan(job, queue, unique_key, unique_for))[0]

    def later(
        self,
        job: Job,
        delay: Delay,
        queue: str | None = None,
        *,
        unique_key: str | None = None,
        unique_for: float | None = None,
    ) -> str:
        """Queue a job to run after `delay` (seconds, timedelta, or an aware datetime); unique
        keys as for push()."""
        return self._store(self._plan(job, queue, unique_key, unique_for, delay))[0]

    def push_unique(
        self,
        job: Job,
        queue: str | None = None,
        *,
        unique_key: str | None = None,
        unique_for: float | None = None,
        delay: Delay | None = None,
    ) -> tuple[str, bool]:
        """Queue a job unless the job holding its unique key waits or runs: (id, created),
        `created` False when `id` is that existing job's. Without `unique_key` the key is the
        job's class and arguments. `delay` as for later()."""
        return self._store(self._plan(job, queue, unique_key, unique_for, delay, always=True))

    def _plan(
        self,
        job: Job,
        queue: str | None,
        unique_key: str | None,
        unique_for: float | None,
        delay: Delay | None = None,
        *,
        always: bool = False,
    ) -> _Push:
        """One job checked and ready to store: its queue, its entry, its unique key (named in
        its record) when it has one (`always`: the class and arguments' when none is given),
        and its delay. push, later, push_unique and their async twins all store through it."""
        name = self.queue_name(job, queue)
        entry = self._prepare(job, name)
        unique = unique_options(job, entry[1], unique_key, unique_for, always=always)
        if unique is not None:
            entry[2]["unique_key"] = unique[0]
        return _Push(name, entry, unique, 0.0 if delay is None else _seconds(delay))

    def _store(self, push: _Push) -> tuple[str, bool]:
        """(id, created): a unique job in the one step that checks its key."""
        if push.unique is None:
            self.driver.enqueue(push.queue, [push.entry], delay=push.delay)
            return push.entry[0], True
        return self.driver.enqueue_unique(push.queue, push.entry, *push.unique, push.delay)

    def push_many(self, jobs: Iterable[Job], queue: str | None = None) -> list[str]:
        """Queue several jobs in one round trip per queue; all are checked before any is sent.
        Unique jobs (a class with `unique = True`) are stored one by one after the others, and
        a duplicate's place in the list holds the id of the job that holds its key."""
        by_queue: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        unique: list[tuple[int, str, tuple[str, str, dict[str, Any]], tuple[str, float]]] = []
        ids: list[str] = []
        for job in jobs:
            name = self.queue_name(job, queue)
            entry = self._prepare(job, name)
            options = unique_options(job, entry[1], None, None)
            if options is None:
                by_queue.setdefault(name, []).append(entry)
            else:
                entry[2]["unique_key"] = options[0]
                unique.append((len(ids), name, entry, options))
            ids.append(entry[0])
        for name, entries in by_queue.items():
            self.driver.enqueue(name, entries)
        done = [entry[0] for entries in by_queue.values() for entry in entries]
        for index, name, entry, options in unique:
            try:
                ids[index], created = self._store(_Push(name, entry, options, 0.0))
            except (PushError, redis.RedisError) as exc:
                if not done:
                    raise
                message = f"push_many stored {len(done)} job(s), then failed: {exc}"
                raise PushError(message, stored=done) from exc
            if created:
                done.append(ids[index])
        return ids

    def _push_flow(self, flow: Workflow, queue: str | None, unique_key: str | None) -> str:
        if unique_key is not None:
            raise ValueError(f"push({flow.kind}(...)): unique keys do not apply to workflows")
        flow_plan = plan(flow, queue, self.queue_name, self._prepare)
        self.driver.enqueue_flow(flow_plan)
        return flow_plan.id

    def get_job_status(self, job_id: str) -> dict[str, Any] | None:
        """The job's record (status, attempts, times, last error), or None if unknown/expired.
        For a chain's id: its status and `steps` (id, job, status each); for a batch's: what
        batch_status() gives."""
        return self.driver.status(job_id) or self.driver.flow(job_id)

    def batch_status(self, batch_id: str) -> dict[str, Any] | None:
        """A batch's `status` (processing, then completed or failed), `total`, `pending`,
        `completed`, `failed` (cancelled jobs included; also counted in `cancelled`) and
        `progress` (0.0 to 1.0: the share that finished), its `callbacks` (id and status each),
        or None if there is no such batch (or its record expired)."""
        found = self.driver.flow(batch_id)
        return found if found is not None and found.get("kind") == "batch" else None

    def result(self, job_id: str, timeout: float | None = None) -> Any:
        """What the job returned (its record's `result`; None if it returned nothing), waiting
        up to `timeout` seconds for it to finish (None: as long as it takes; 0: not at all).

        Raises JobFailed (with the error and traceback) if it failed for good or was
        cancelled, TimeoutError if it has not finished in time, and JobNotFoundError for an id
        with no record (never pushed, deleted, or expired)."""
        _check_id(job_id)
        record = self.driver.wait_finished(job_id, timeout)
        flow = self.driver.flow(job_id) if record is None else None
        if flow is not None:  # a chain's id: its last step's result (workflows/chains.py)
            chains.not_a_batch(job_id, flow, "result()")
            return chains.chain_result(self.driver, job_id, flow, timeout)
        return _result(job_id, record, timeout)

    async def aresult(self, job_id: str, timeout: float | None = None) -> Any:
        """result() for async code: waits on the running event loop (a chain's, on a thread)."""
        _check_id(job_id)
        record = await self.driver.aio().wait_finished(job_id, timeout)
        if record is None and await asyncio.to_thread(self.driver.flow, job_id) is not None:
            return await asyncio.to_thread(self.result, job_id, timeout)
        return _result(job_id, record, timeout)

    async def apush(
        self,
        job: Job | Workflow,
        queue: str | None = None,
        *,
        unique_key: str | None = None,
        unique_for: float | None = None,
    ) -> str:
        """push() for async code (FastAPI, aiohttp): the same checks and unique keys, the round
        trip awaited (a workflow's on a thread)."""
        if isinstance(job, (Chain, Batch)):
            return await asyncio.to_thread(self._push_flow, job, queue, unique_key)
        return (await self._astore(self._plan(job, queue, unique_key, unique_for)))[0]

    async def alater(
        self,
        job: Job,
        delay: Delay,
        queue: str | None = None,
        *,
        unique_key: str | None = None,
        unique_for: float | None = None,
    ) -> str:
        """later() for async code."""
        return (await self._astore(self._plan(job, queue, unique_key, unique_for, delay)))[0]

    async def apush_unique(
        self,
        job: Job,
        queue: str | None = None,
        *,
        unique_key: str | None = None,
        unique_for: float | None = None,
        delay: Delay | None = None,
    ) -> tuple[str, bool]:
        """push_unique() for async code: (id, created)."""
        push = self._plan(job, queue, unique_key, unique_for, delay, always=True)
        return await self._astore(push)

    async def _astore(self, push: _Push) -> tuple[str, bool]:
        """_store() awaited: the same record, the same atomic step."""
        aio = self.driver.aio()
        if push.unique is None:
            await aio.enqueue(push.queue, [push.entry], delay=push.delay)
            return push.entry[0], True
        return await aio.enqueue_unique(push.queue, push.entry, *push.unique, push.delay)

    async def apush_many(self, jobs: Iterable[Job], queue: str | None = None) -> list[str]:
        """push_many() for async code."""
        jobs = list(jobs)
        by_queue: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        ids = []
        for job in jobs:
            name = self.queue_name(job, queue)
            entry = self._prepare(job, name)
            if unique_options(job, entry[1], None, None) is not None:
                return await asyncio.to_thread(self.push_many, jobs, queue)
            by_queue.setdefault(name, []).append(entry)
            ids.append(entry[0])
        for name, entries in by_queue.items():
            await self.driver.aio().enqueue(name, entries)
        return ids

    async def aclose(self) -> None:
        """Close the connections the async methods opened on the running event loop."""
        await self.driver.aio().close()

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

    def cancel(self, job_id: str) -> bool:
        """Cancel a job. One that waits (queued, delayed, retrying) becomes `cancelled` and never
        runs. One that runs is asked to stop: under `jobpool start` its master kills its worker
        (as for a timeout) and records it `cancelled`, without a retry or its failed() hook; a
        standalone `jobpool worker` lets it run to its end (a failure then ends it `cancelled`,
        and so does a second SIGTERM, which would otherwise hand it back to run again).
        A chain's id cancels what is left of the chain. False when there is no such job or it
        has finished."""
        if self.driver.cancel(job_id) is not Cancel.NOTHING:
            return True
        flow = self.driver.flow(job_id)
        if flow is None:
            return False
        chains.not_a_batch(job_id, flow, "cancel()")
        return chains.cancel_chain(self.driver, flow)

    def pause(self, queue: str | None = None) -> bool:
        """Pause a queue: its workers, on every host, finish what they run and claim nothing
        more until resume(); pushes are still stored. False if it was paused already."""
        return self.driver.set_paused(self.queue_name(queue=queue), True)

    def resume(self, queue: str | None = None) -> bool:
        """Let a paused queue's workers claim again (within a second). False if it was not
        paused."""
        return self.driver.set_paused(self.queue_name(queue=queue), False)

    def is_paused(self, queue: str | None = None) -> bool:
        return self.driver.is_paused(self.queue_name(queue=queue))

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> QueueManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _Push:
    """A job ready to store (QueueManager._plan)."""

    queue: str
    entry: tuple[str, str, dict[str, Any]]
    unique: tuple[str, float] | None  # its unique key and how long it may hold it
    delay: float


_CLASS_LIMITS: dict[type[Job], list[Any] | None] = {}  # each class's, read once


def _class_limit(job_cls: type[Job]) -> list[Any] | None:
    if job_cls not in _CLASS_LIMITS:
        try:
            _CLASS_LIMITS[job_cls] = class_limit(job_cls)
        except ValueError as exc:
            raise JobEncodeError(str(exc)) from None
    return _CLASS_LIMITS[job_cls]


def _check_id(job_id: str) -> None:
    try:
        queue_of(job_id)
    except ValueError as exc:
        raise JobNotFoundError(str(exc)) from None


def _result(job_id: str, record: dict[str, Any] | None, timeout: float | None) -> Any:
    """What result() returns or raises for the record wait_finished() gave."""
    if record is None:
        raise JobNotFoundError(
            f"no job {job_id}: never pushed, deleted, or its record expired (completed_ttl, "
            "failed_ttl)"
        )
    status = record["status"]
    if status == "completed":
        return record.get("result")
    if status in FINISHED:
        raise JobFailed(job_id, record)
    raise TimeoutError(f"job {job_id} is still {status} after {timeout or 0:g}s")


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
