"""The Redis driver: every state change is one Lua script (see lua/), run on the server's clock.

It serves producers, admins and the master; a worker claims and acknowledges through its own
session (session.py)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis
import redis.cluster

from jobpool import defaults
from jobpool.drivers.base import (
    FINISHED,
    Cancel,
    Requeued,
    TickClaim,
    cancel_requested,
    public_record,
)
from jobpool.drivers.redis import scripts as s
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.drivers.redis.keys import QueueKeys
from jobpool.drivers.redis.nodes import REDIRECTS, node_client, primaries, refresh
from jobpool.drivers.redis.parse import ms
from jobpool.drivers.redis.replies import is_full
from jobpool.drivers.redis.scripts import WAKE
from jobpool.drivers.redis.session import RedisSession
from jobpool.errors import PushError, RedisFullError, ReplicationError
from jobpool.ids import queue_of
from jobpool.workflows.plan import FlowPlan, flow_field
from jobpool.workflows.status import KINDS, flow_status, related_ids

if TYPE_CHECKING:
    from jobpool.drivers.base import AsyncDriver, Driver, Session
    from jobpool.drivers.redis.aio import AsyncRedisDriver

ENQUEUE_CHUNK = 1000  # jobs per script call: keeps each call short for the server
RECHECK = 1.0  # seconds between looks at a waited-for record (a delete or an expiry wakes no one)
SUBSCRIBED = 5.0  # seconds to wait for the confirmation of a SUBSCRIBE
T = TypeVar("T")
TOKEN_SCAN = 10_000  # list entries searched for wake tokens (there is at most one per worker)


class RedisDriver:
    """Queues in Redis, shared by every worker on every host that uses the same prefix."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = defaults.PREFIX,
        completed_ttl: float = defaults.COMPLETED_TTL,
        failed_ttl: float = defaults.FAILED_TTL,
        promote_batch: int = 1000,
        wait_replicas: int = defaults.WAIT_REPLICAS,
        wait_timeout: float = defaults.WAIT_TIMEOUT,
    ):
        self.client = client
        # Durable writes: pushes, acks and retries wait (WAIT) for this many replicas.
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = max(ms(wait_timeout), 1)
        self.prefix = prefix
        self.completed_ttl_ms = ms(completed_ttl)
        self.failed_ttl_ms = ms(failed_ttl)
        self.promote_batch = promote_batch
        self.scripts = s.Scripts(client)
        self._keys: dict[str, QueueKeys] = {}
        self._aio: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRedisDriver]
        self._aio = weakref.WeakKeyDictionary()

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = QueueKeys(self.prefix, queue)
        return k

    def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int:
        """Store jobs a batch per script call, each batch whole or not at all (a script's first
        write decides whether a full Redis refuses it). Batches go one after the other, so a
        failure can say exactly which jobs were stored (see PushError)."""
        keys, delay_ms, stored = s.enqueue_keys(self.keys(queue)), ms(delay), 0
        for i in range(0, len(jobs), ENQUEUE_CHUNK):
            chunk = jobs[i : i + ENQUEUE_CHUNK]
            try:
                args = s.enqueue_args(delay_ms, chunk)
                reply, confirmed = self.run_and_wait("enqueue", keys, args)
            except redis.RedisError as exc:
                error = _push_error(exc, jobs[:i], chunk)
                if error is exc:
                    raise
                raise error from exc
            stored += reply
            if confirmed < self.wait_replicas:
                raise replication_error(confirmed, self, jobs[:i], chunk)
        return stored

    def enqueue_unique(
        self,
        queue: str,
        job: tuple[str, str, dict[str, Any]],
        unique_key: str,
        unique_for: float,
        delay: float = 0.0,
    ) -> tuple[str, bool]:
        """One job, stored unless the holder of `unique_key` waits or runs (enqueue.lua)."""
        keys = s.enqueue_keys(self.keys(queue), unique_key)
        args = s.enqueue_args(ms(delay), [job], max(ms(unique_for), 1))
        try:
            reply, confirmed = self.run_and_wait("enqueue", keys, args)
        except redis.RedisError as exc:
            error = _push_error(exc, [], [job])
            if error is exc:
                raise
            raise error from exc
        if confirmed < self.wait_replicas:
            raise replication_error(confirmed, self, [], [job])
        if isinstance(reply, bytes) and reply.decode() != job[0]:
            return reply.decode(), False
        return job[0], True

    def run_and_wait(self, name: str, keys: list[str], args: list[Any]) -> tuple[Any, int]:
        """Run a script that writes; with `wait_replicas`, WAIT for them in the same round
        trip. (its reply, the replicas that confirmed it: 0 when not waiting)."""
        if not self.wait_replicas:
            return self.scripts.run(name, keys, args), 0
        return self.scripts.run_waiting(name, keys, args, self.wait_replicas, self.wait_timeout_ms)

    def session(self, small_replies: bool = False) -> RedisSession:
        """A worker's own connection for claims and acks (see RedisSession); `small_replies`:
        one that never claims (a job thread's), with a small reply buffer."""
        return RedisSession(self, small_replies)

    def requeue_worker(
        self,
        queue: str,
        worker_id: str,
        reason: str,
        only_if_expired: bool = False,
        count_attempt: bool = True,
    ) -> Requeued:
        keys = s.requeue_keys(self.keys(queue), worker_id)
        args = s.requeue_args(worker_id, reason, self.failed_ttl_ms, only_if_expired, count_attempt)
        out = self.scripts.run("requeue", keys, args)  # {handed, (id, job class)...}
        failed = tuple((out[i].decode(), out[i + 1].decode()) for i in range(1, len(out), 2))
        return Requeued(out[0], failed)

    def renew(self, queue: str, worker_ids: Sequence[str], lease: float) -> None:
        if worker_ids:
            keys, args = s.renew_keys(self.keys(queue)), s.renew_args(ms(lease), worker_ids)
            self.scripts.run("renew", keys, args)

    def status(self, job_id: str) -> dict[str, Any] | None:
        try:
            queue = queue_of(job_id)
        except ValueError:
            return None
        return stored_record(job_id, self.client.hget(self.keys(queue).state, job_id))

    def wait_finished(self, job_id: str, timeout: float | None) -> dict[str, Any] | None:
        """The job's record once it has finished, or as it is after `timeout` seconds (None:
        no limit); None if there is no such job.

        It blocks on the job's pub/sub channel: subscribed first, then watch.lua puts the
        channel in the record (or finds the job finished), and the script that finishes the
        job publishes on it. The record is read again after each message and at least every
        RECHECK seconds, for what publishes nothing (a delete, an expiry)."""
        record = self.status(job_id)
        if record is None or record["status"] in FINISHED or timeout is not None and timeout <= 0:
            return record
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        k = self.keys(queue_of(job_id))
        channel = k.done(job_id)
        with self.client.pubsub() as pubsub:
            pubsub.subscribe(channel)
            if pubsub.get_message(timeout=SUBSCRIBED) is None:  # the server's confirmation
                raise redis.TimeoutError(f"no reply to SUBSCRIBE {channel} in {SUBSCRIBED} s")
            raw = self.scripts.run("watch", s.watch_keys(k), s.watch_args(job_id, channel))
            while True:
                record = stored_record(job_id, raw)
                left = deadline - time.monotonic()
                if record is None or record["status"] in FINISHED or left <= 0:
                    return record
                pubsub.get_message(timeout=min(left, RECHECK))
                raw = self.client.hget(k.state, job_id)

    def aio(self) -> AsyncRedisDriver:
        """The async side of this driver for the running event loop (redis-py's asyncio client
        binds its connections to one loop): made at its first use on each loop."""
        from jobpool.drivers.redis.aio import AsyncRedisDriver  # redis.asyncio: only if used

        loop = asyncio.get_running_loop()
        aio = self._aio.get(loop)
        if aio is None:
            aio = self._aio[loop] = AsyncRedisDriver(self)
        return aio

    def counts(self, queue: str) -> dict[str, int]:
        """Jobs per state. Wake tokens are not jobs and are left out (see _counts)."""
        return self._on_owner(queue, lambda k: self._counts(k)[0])

    def _counts(self, k: QueueKeys) -> tuple[dict[str, int], list[int]]:
        """counts(), and where the wake tokens sit in the ready list.

        A token lies in the ready list until an idle worker's wait moves it into that worker's
        own list, where its next fetch drops it; so each list's length less its tokens counts
        jobs. Tokens are pushed only onto an empty list, so they sit near its head: LPOS looks
        at the first TOKEN_SCAN entries only, so a scrape of a long queue stays cheap."""
        with self._pipeline(k) as pipe:
            pipe.llen(k.ready)
            pipe.lpos(k.ready, WAKE, count=0, maxlen=TOKEN_SCAN)
            pipe.zcard(k.delayed)
            pipe.zcard(k.failed)
            pipe.zrange(k.workers, 0, -1)
            ready, tokens, delayed, failed, workers = pipe.execute()
            for worker in workers:
                wip = k.wip(worker.decode())
                pipe.llen(wip)
                pipe.lpos(wip, WAKE, count=0, maxlen=TOKEN_SCAN)
            held = pipe.execute() if workers else []
        in_flight = sum(held[0::2]) - sum(len(t) for t in held[1::2])
        counts = {"ready": ready - len(tokens), "delayed": delayed, "failed": failed}
        return {**counts, "in_flight": in_flight}, tokens

    def stats(self, queue: str) -> dict[str, Any]:
        """counts() plus live workers, jobs finished in about the last minute (10 s buckets)
        and the age in seconds of the oldest job waiting (None when none waits)."""
        return self._on_owner(queue, self._stats)

    def _stats(self, k: QueueKeys) -> dict[str, Any]:
        counts, tokens = self._counts(k)
        with self._pipeline(k) as pipe:
            pipe.time()
            pipe.zrange(k.workers, 0, -1, withscores=True)
            pipe.hgetall(k.stats)
            pipe.lindex(k.ready, _first_job(tokens))
            pipe.zrange(k.delayed, 0, 0, withscores=True)
            (sec, usec), workers, buckets, head, first_delayed = pipe.execute()
        now_ms = sec * 1000 + usec // 1000
        out: dict[str, Any] = dict(counts)
        out["workers"] = sum(1 for _, deadline in workers if deadline >= now_ms)
        recent = now_ms // 10_000 - 5  # the current bucket and the five before: ~a minute
        for kind in ("done", "failed"):
            out[f"{kind}_last_minute"] = sum(
                int(n)
                for field, n in buckets.items()
                if field.startswith(kind.encode()) and int(field.rsplit(b":", 1)[1]) >= recent
            )
        due = [int(score) for _, score in first_delayed if score <= now_ms]
        out["oldest_waiting_age"] = self._oldest_age(k, head, due, now_ms)
        return out

    def _pipeline(self, k: QueueKeys) -> redis.client.Pipeline:
        """A pipeline to the node that serves the queue: the server, or on Redis Cluster the
        primary of the queue's slot, whose clock (TIME) is the one its scripts use."""
        return node_client(self.client, k.state).pipeline(transaction=False)

    def _on_owner(self, queue: str, read: Callable[[QueueKeys], T]) -> T:
        """`read` the queue's keys; after a Cluster redirect (the slot moved, as in a
        failover), once more on the owner named by the slot map read again."""
        k = self.keys(queue)
        try:
            return read(k)
        except REDIRECTS as exc:
            refresh(self.client, exc)
            return read(k)

    def _oldest_age(
        self, k: QueueKeys, head: bytes | None, due: list[int], now_ms: int
    ) -> float | None:
        """Seconds the longest waiting job has waited: the first job of the ready list (since
        it was pushed or came due), or a delayed job past its due time that no fetch promoted
        yet (on a queue nobody serves, none ever will). None when nothing waits."""
        since = list(due)
        raw = self.client.hget(k.state, head) if head not in (None, WAKE.encode()) else None
        try:
            record = json.loads(raw) if raw is not None else None
        except ValueError:  # a damaged record must not break stats or a metrics scrape
            record = None
        if isinstance(record, dict):
            since.append(max(record.get("created_at", now_ms), record.get("due_at", 0)))
        return max(now_ms - min(since), 0) / 1000.0 if since else None

    def stored_queues(self) -> list[str]:
        """The queues that hold jobs in Redis (ready, delayed, in flight or failed), whether or
        not anyone serves them. Redis deletes a list or sorted set as it empties, so these keys
        exist only while they hold something. SCAN walks the keyspace a little at a time; KEYS
        would block the server for all of it."""
        head = f"{self.prefix}:{{"
        found = set()
        for node in primaries(self.client):  # on Redis Cluster, each primary holds its slots
            for key in node.scan_iter(match=f"{_glob_escape(head)}*}}:*", count=1000):
                name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
                queue, _, part = name[len(head) :].partition("}:")
                if queue and (part in ("ready", "delayed", "failed") or part.startswith("wip:")):
                    found.add(queue)
        return sorted(found)

    def payloads(self, queue: str, job_ids: Sequence[str]) -> list[bytes | None]:
        """The stored bodies (class name and attributes, JSON) of jobs, read only; None where
        there is none: a completed job's body goes with its ack, a failed one's is kept."""
        if not job_ids:
            return []
        return cast("list[bytes | None]", self.client.hmget(self.keys(queue).payload, job_ids))

    def failed_jobs(self, queue: str, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
        k = self.keys(queue)
        found = cast("list[bytes]", self.client.zrange(k.failed, start, start + count - 1))
        ids = [i.decode() for i in found]
        raws = self.client.hmget(k.state, ids) if ids else []
        pairs = zip(ids, raws, strict=True)
        return [public_record(i, json.loads(r)) for i, r in pairs if r is not None]

    def retry_failed(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        keys = s.retry_failed_keys(self.keys(queue))
        return int(self.scripts.run("retry_failed", keys, s.retry_failed_args(job_ids)))

    def delete(self, job_id: str) -> bool:
        keys = s.delete_keys(self.keys(queue_of(job_id)))
        code = int(self.scripts.run("delete", keys, s.delete_args(job_id)))
        if code < 0:
            raise ValueError(f"job {job_id} is being processed; delete it after it finishes")
        return code == 1

    def cancel(self, job_id: str) -> Cancel:
        try:
            keys = s.cancel_keys(self.keys(queue_of(job_id)))
        except ValueError:  # not an id of ours
            return Cancel.NOTHING
        return Cancel(self.scripts.run("cancel", keys, s.cancel_args(job_id, self.failed_ttl_ms)))

    def uptime(self, queue: str) -> float:
        def read(k: QueueKeys) -> dict[str, Any]:
            client: Any = self.client
            if isinstance(client, redis.cluster.RedisCluster):  # the node holding the queue
                node = client.get_node_from_key(k.ready)
                info: dict[str, Any] = client.info("server", target_nodes=node)
                return info
            return cast("dict[str, Any]", client.info("server"))

        return float(self._on_owner(queue, read).get("uptime_in_seconds", float("inf")))

    def set_paused(self, queue: str, paused: bool) -> bool:
        """Pause or resume a queue (its workers claim nothing while it is paused); True if
        that changed anything."""
        key = self.keys(queue).paused
        if paused:
            return bool(self.client.set(key, "1", nx=True))
        return bool(self.client.delete(key))

    def is_paused(self, queue: str) -> bool:
        return bool(self.client.exists(self.keys(queue).paused))

    def cancel_requests(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        """One HMGET of the records of the jobs workers run (the master's tick)."""
        if not job_ids:
            return set()
        raws = self.client.hmget(self.keys(queue).state, job_ids)
        found = set()
        for job_id, raw in zip(job_ids, raws, strict=True):
            try:
                record = json.loads(raw) if raw is not None else None
            except ValueError:  # a damaged record asks nothing
                continue
            if isinstance(record, dict) and cancel_requested(record):
                found.add(job_id)
        return found

    def schedule_tick(
        self,
        queue: str,
        name: str,
        tick: float,
        job: tuple[str, str, dict[str, Any]],
        catch_up: bool,
        grace: float,
        unique: tuple[str, float] | None = None,
    ) -> TickClaim:
        """Claim a schedule's tick and push its job (lua/schedule_tick.lua)."""
        key, hold = unique if unique is not None else (None, 0.0)
        keys = s.schedule_tick_keys(self.keys(queue), name, key)
        args = s.schedule_tick_args(round(tick * 1000), catch_up, ms(grace), job, ms(hold))
        code, job_id, claimed = self.scripts.run("schedule_tick", keys, args)
        return TickClaim(TICK_OUTCOMES[code], job_id.decode(), claimed / 1000.0)

    def schedule_state(self, queue: str, name: str) -> dict[str, Any] | None:
        raw = self.client.hgetall(self.keys(queue).schedule(name))
        return schedule_record(raw) if raw else None

    def schedule_queues(self, name: str) -> list[str]:
        """The queues whose slot holds a state of schedule `name` (found with SCAN), for
        commands that do not import the job modules and so cannot tell a job's own queue."""
        head, tail = f"{self.prefix}:{{", f"}}:schedule:{name}"
        match = f"{_glob_escape(head)}*{_glob_escape(tail)}"
        found = set()
        for key in self.client.scan_iter(match=match, count=1000):
            text = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
            found.add(text[len(head) : -len(tail)])
        return sorted(found)

    def enqueue_flow(self, plan: FlowPlan) -> None:
        """Store a workflow and all of its jobs in one step (lua/enqueue_flow.lua)."""
        keys = s.enqueue_flow_keys(self.keys(plan.queue))
        args = s.enqueue_flow_args(plan.field, plan.record, plan.entries, plan.ready)
        try:
            _, confirmed = self.run_and_wait("enqueue_flow", keys, args)
        except redis.RedisError as exc:
            error = _push_error(exc, [], plan.entries)
            if error is exc:
                raise
            raise error from exc
        if confirmed < self.wait_replicas:
            raise replication_error(confirmed, self, [], plan.entries)

    def flow(self, flow_id: str) -> dict[str, Any] | None:
        """A chain's or batch's status (workflows/status.py), or None if there is none."""
        try:
            k = self.keys(queue_of(flow_id))
        except ValueError:
            return None
        fields = [flow_field(kind, flow_id) for kind in KINDS]
        for raw in self.client.hmget(k.state, fields):
            record = json.loads(raw) if raw is not None else None
            if record is None or record.get("expires_at", math.inf) <= time.time() * 1000:
                continue
            ids = related_ids(record)
            raws = self.client.hmget(k.state, ids) if ids else []
            pairs = zip(ids, raws, strict=True)
            jobs = {i: json.loads(r) if r is not None else None for i, r in pairs}
            return flow_status(flow_id, record, jobs)
        return None

    def running_batches(self, queue: str, most: int = 100) -> list[dict[str, Any]]:
        """The queue's batches still running, oldest first, as batch_status() gives them (of
        the `most` oldest workflows indexed, chains included)."""
        k = self.keys(queue)
        found = cast("list[bytes]", self.client.zrange(k.flows, 0, most - 1))
        fields = [f.decode() for f in found]
        raws = self.client.hmget(k.state, fields) if fields else []
        out = []
        for field, raw in zip(fields, raws, strict=True):
            record = json.loads(raw) if raw is not None else None
            if record and record.get("kind") == "batch" and record.get("status") == "processing":
                out.append(flow_status(field.split(":", 1)[1], record, {}))
        return out

    def close(self) -> None:
        self.client.close()


TICK_OUTCOMES = {0: "claimed", 1: "pushed", 2: "skipped", 3: "held"}


def schedule_record(raw: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    """A schedule's hash as schedule_state() gives it: times in unix seconds."""
    out: dict[str, Any] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else field
        text = value.decode() if isinstance(value, bytes) else value
        out[name] = int(text) / 1000.0 if name in ("claimed", "run_tick", "run_at") else text
    return out


def stored_record(job_id: str, raw: bytes | str | None) -> dict[str, Any] | None:
    """A record as read from the state hash, as status() returns it: None if there is none or
    it is past its time to live (pruned at the next chance)."""
    if raw is None:
        return None
    record = json.loads(raw)
    if record.get("expires_at", math.inf) <= time.time() * 1000:
        return None
    return public_record(job_id, record)


def _push_error(
    exc: redis.RedisError,
    stored: Sequence[tuple[str, str, dict[str, Any]]],
    failed: Sequence[tuple[str, str, dict[str, Any]]],
) -> Exception:
    """The error for a failed enqueue: RedisFullError when Redis is full, a PushError naming
    what was stored when earlier batches were, else redis-py's error as it is."""
    done = [job_id for job_id, _, _ in stored]
    if is_full(exc):
        return RedisFullError(
            f"Redis is full (used memory reached maxmemory and nothing can be evicted): "
            f"{len(failed)} job(s) not stored"
            + (f", {len(done)} stored before it filled up" if done else "")
            + "; raise maxmemory, or let the workers drain the queues",
            stored=done,
        )
    if not done:
        return exc
    unsure = [job_id for job_id, _, _ in failed] if isinstance(exc, CONNECTION_ERRORS) else []
    return PushError(
        f"push_many stored {len(done)} job(s), then failed: {exc}", stored=done, unconfirmed=unsure
    )


def replication_error(
    confirmed: int,
    driver: RedisDriver,
    stored: Sequence[tuple[str, str, dict[str, Any]]],
    unconfirmed: Sequence[tuple[str, str, dict[str, Any]]],
) -> ReplicationError:
    """The error of a push that the primary stored but too few replicas confirmed in time."""
    done = [job_id for job_id, _, _ in stored]
    return ReplicationError(
        f"{len(unconfirmed)} job(s) stored on the Redis primary, but only {confirmed} of "
        f"{driver.wait_replicas} replica(s) confirmed them within {driver.wait_timeout_ms} ms "
        "([redis] wait_replicas): they may or may not be stored after a failover"
        + (f"; {len(done)} job(s) before them were stored and replicated" if done else ""),
        stored=done,
        unconfirmed=[job_id for job_id, _, _ in unconfirmed],
        replicas=confirmed,
    )


def _first_job(tokens: list[int]) -> int:
    """The index of the first element of the ready list that is not a wake token, given the
    tokens' positions in ascending order."""
    index = 0
    for position in tokens:
        if position != index:
            break
        index += 1
    return index


def _glob_escape(text: str) -> str:
    """`text` as a literal in a SCAN MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


if TYPE_CHECKING:  # mypy proves both keep the protocols of drivers/base.py

    def _conforms(
        driver: RedisDriver, session: RedisSession, aio: AsyncRedisDriver
    ) -> tuple[Driver, Session, AsyncDriver]:
        return driver, session, aio
