"""Loads the Lua scripts (one file per atomic operation) and builds their KEYS and ARGV.

Each script has a pair of pure builders, `NAME_keys` and `NAME_args`, in the order of its
header (tests/unit/test_lua_headers.py checks them against it), so what a script takes is tested
without Redis and written once for the driver and the session; `Scripts` only binds the
scripts to a client. Times are whole milliseconds here, as the scripts take them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import redis

from jobpool.drivers.redis.keys import QueueKeys
from jobpool.drivers.redis.nodes import REDIRECTS, node_client, refresh
from jobpool.drivers.redis.replies import is_cut_short, is_demoted
from jobpool.limits import Limits

WAKE = "~wake"  # the token lua/includes/common.lua pushes to wake idle workers; never a job id
PRUNE_BATCH = 10  # expired records an ack or a failure deletes in passing
RETRY_ALL_BATCH = 10_000  # failed jobs one retry_failed call queues again when asked for all
ACK_NEXT = 2  # the index in ack_args of the job the ack begins next (the session fills it late)

_INCLUDE = re.compile(r"^-- @include (\w+)$", re.MULTILINE)
_compact = json.JSONEncoder(separators=(",", ":")).encode
OPERATIONS = (
    "enqueue",
    "fetch",
    "begin",
    "ack",
    "retry_or_fail",
    "requeue",
    "release",
    "renew",
    "retry_failed",
    "delete",
    "cancel",
    "watch",
    "schedule_tick",
    "enqueue_flow",
)


@cache
@cache
def source(name: str) -> str:
    """The text of lua/NAME.lua with its `-- @include X` lines replaced by lua/includes/X.lua
    (whose own include lines are replaced in turn: common.lua includes flows.lua). Read once
    per process: a forked worker reuses what its master read."""
    lua = resources.files("jobpool.drivers.redis") / "lua"
    return _expand((lua / f"{name}.lua").read_text())


def _expand(text: str) -> str:
    includes = resources.files("jobpool.drivers.redis") / "lua" / "includes"
    return _INCLUDE.sub(lambda m: _expand((includes / f"{m.group(1)}.lua").read_text()), text)


class Scripts:
    """The registered scripts of one client; any the server forgot (a restart, SCRIPT FLUSH) are
    loaded again and run once more."""

    def __init__(self, client: redis.Redis):
        self._client = client
        self._by_name = {name: client.register_script(source(name)) for name in OPERATIONS}

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._by_name[name]
        try:  # EVALSHA straight away: the Script wrapper costs more than a small script does
            return self._client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return script(keys=keys, args=args)
        except redis.ResponseError as exc:
            if is_demoted(exc):
                self._forget_connections()
            raise

    def _forget_connections(self) -> None:
        """After READONLY (a primary demoted by a failover), close the pool's connections so
        the next command connects anew: to the new primary, as Sentinel or DNS now name it.
        The caller keeps what was refused and retries. (Through Sentinel, redis-py already
        turns READONLY into a ConnectionError and reconnects.)"""
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    def run_waiting(
        self, name: str, keys: list[str], args: list[Any], replicas: int, timeout_ms: int
    ) -> tuple[Any, int]:
        """Run a script and `WAIT replicas timeout_ms` in one round trip (a pipeline, so the
        wait costs nothing but itself); (the script's reply, how many replicas confirmed).
        On Redis Cluster both go to the primary of the keys' slot: WAIT counts the replicas of
        the node it runs on, and names no key to route it by."""
        for attempt in range(3):  # a failover may bring both a redirect and NOSCRIPT
            pipe = node_client(self._client, keys[0]).pipeline(transaction=False)
            pipe.execute_command("EVALSHA", self.sha(name), len(keys), *keys, *args)
            pipe.execute_command("WAIT", replicas, timeout_ms)
            try:
                reply, confirmed = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                refresh(self._client, exc)  # on a Cluster the node may be gone: read the map
                raise
            if isinstance(reply, redis.exceptions.NoScriptError) and attempt < 2:
                self._client.script_load(source(name))
                continue
            if isinstance(reply, REDIRECTS) and attempt < 2:  # the slot moved (a failover)
                refresh(self._client, reply)
                continue
            if is_cut_short(confirmed):  # demoted under the WAIT: the write may be lost
                confirmed = 0
                self._forget_connections()
            if is_demoted(reply) or is_demoted(confirmed):
                self._forget_connections()
            if isinstance(reply, Exception):
                raise reply
            if isinstance(confirmed, Exception):
                raise confirmed
            return reply, int(confirmed)
        raise AssertionError("unreachable")  # pragma: no cover

    def sha(self, name: str) -> str:
        return self._by_name[name].sha


def enqueue_keys(k: QueueKeys, unique_key: str | None = None) -> list[str]:
    """`unique_key`: the key a unique job holds (then the call stores that one job only)."""
    keys = [k.ready, k.delayed, k.state, k.payload, k.workers]
    return keys if unique_key is None else [*keys, k.unique(unique_key)]


def enqueue_args(
    delay_ms: int, jobs: Sequence[tuple[str, str, dict[str, Any]]], unique_for_ms: int = 0
) -> list[Any]:
    """`jobs`: (job id, body JSON, initial record) each; `unique_for_ms`: how long a unique job
    may hold its key."""
    args: list[Any] = [delay_ms, unique_for_ms]
    for job_id, body, record in jobs:
        args += (job_id, body, _compact(record))
    return args


def fetch_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [
        k.ready,
        k.delayed,
        k.state,
        k.payload,
        k.workers,
        k.wip(worker_id),
        k.paused,
        k.starts,
        k.limits,
    ]


def fetch_args(
    worker_id: str,
    count: int,
    lease_ms: int,
    promote: int,
    held: Sequence[str] | None = None,
    limits: Limits | None = None,
) -> list[Any]:
    rate = limits.rate if limits else None
    args: list[Any] = [worker_id, count, lease_ms, promote]
    args += [rate.count, math.ceil(rate.seconds * 1000)] if rate else [0, 0]
    args.append((limits.max_running if limits else None) or 0)
    args += ["0"] if held is None else ["1", *held]
    return args


def begin_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.wip(worker_id), k.state]


def begin_args(job_id: str, worker_id: str) -> list[Any]:
    return [job_id, worker_id]


def ack_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.wip(worker_id), k.state, k.payload, k.expire, k.failed, k.stats, k.ready]


def ack_args(
    ttl_ms: int,
    next_id: str,
    worker_id: str,
    job_ids: Sequence[str],
    prune: int = PRUNE_BATCH,
    results: Sequence[str] = (),
) -> list[Any]:
    """`next_id`: the job the ack begins, '' for none (at ACK_NEXT, where the session may set
    it until the ack is written); `results`: each job's result as JSON, '' for none."""
    args: list[Any] = [ttl_ms, prune, next_id, worker_id]
    for i, job_id in enumerate(job_ids):
        args += (job_id, results[i] if i < len(results) else "")
    return args


def retry_or_fail_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [
        k.wip(worker_id),
        k.state,
        k.payload,
        k.delayed,
        k.ready,
        k.failed,
        k.expire,
        k.stats,
        k.workers,
    ]


def retry_or_fail_args(
    job_id: str,
    delay_ms: int,
    error: str,
    traceback: str,
    ttl_ms: int,
    force_fail: bool,
    prune: int = PRUNE_BATCH,
) -> list[Any]:
    return [job_id, delay_ms, error, traceback, ttl_ms, int(force_fail), prune]


def requeue_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.workers, k.wip(worker_id), k.ready, k.state, k.failed, k.expire, k.stats]


def requeue_args(
    worker_id: str, reason: str, ttl_ms: int, only_if_expired: bool, count_attempt: bool
) -> list[Any]:
    return [worker_id, reason, ttl_ms, int(only_if_expired), int(count_attempt)]


def release_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.wip(worker_id), k.ready, k.state, k.workers, k.expire]


def release_args(worker_id: str, ttl_ms: int, job_ids: Sequence[str]) -> list[Any]:
    return [worker_id, ttl_ms, *job_ids]


def renew_keys(k: QueueKeys) -> list[str]:
    return [k.workers]


def renew_args(lease_ms: int, worker_ids: Sequence[str]) -> list[Any]:
    return [lease_ms, *worker_ids]


def retry_failed_keys(k: QueueKeys) -> list[str]:
    return [k.failed, k.expire, k.state, k.payload, k.ready]


def retry_failed_args(job_ids: Sequence[str] | None, most: int = RETRY_ALL_BATCH) -> list[Any]:
    """`job_ids` None: the oldest `most` failed jobs."""
    return [most, "*"] if job_ids is None else [0, *job_ids]


def delete_keys(k: QueueKeys) -> list[str]:
    return [k.ready, k.delayed, k.failed, k.expire, k.state, k.payload]


def delete_args(job_id: str) -> list[Any]:
    return [job_id]


def watch_keys(k: QueueKeys) -> list[str]:
    return [k.state]


def watch_args(job_id: str, channel: str) -> list[Any]:
    return [job_id, channel]


def cancel_keys(k: QueueKeys) -> list[str]:
    return [k.ready, k.delayed, k.state, k.expire]


def cancel_args(job_id: str, ttl_ms: int) -> list[Any]:
    return [job_id, ttl_ms]


def schedule_tick_keys(k: QueueKeys, name: str, unique_key: str | None = None) -> list[str]:
    """`name`: the schedule's; `unique_key`: the key its job holds, if the job is unique."""
    keys = [k.schedule(name), k.ready, k.state, k.payload]
    return keys if unique_key is None else [*keys, k.unique(unique_key)]


def schedule_tick_args(
    tick_ms: int,
    catch_up: bool,
    grace_ms: int,
    job: tuple[str, str, dict[str, Any]],
    unique_for_ms: int = 0,
) -> list[Any]:
    """`job`: (job id, body JSON, initial record), as for enqueue."""
    job_id, body, record = job
    return [tick_ms, int(catch_up), grace_ms, job_id, body, _compact(record), unique_for_ms]


FLOW_PRUNE = 10  # finished workflows a push of one drops from the queue's index in passing


def enqueue_flow_keys(k: QueueKeys) -> list[str]:
    return [k.ready, k.state, k.payload, k.flows]


def enqueue_flow_args(
    field: str,
    record: dict[str, Any],
    jobs: Sequence[tuple[str, str, dict[str, Any]]],
    ready: Sequence[bool],
    prune: int = FLOW_PRUNE,
) -> list[Any]:
    """`field`: the workflow's ("chain:ID", "batch:ID"); `jobs`: (job id, body JSON, initial
    record) each, as for enqueue; `ready[i]`: job i is queued now, else it waits its turn."""
    args: list[Any] = [field, _compact(record), prune]
    for (job_id, body, job_record), now in zip(jobs, ready, strict=True):
        args += (job_id, body, _compact(job_record), int(now))
    return args
