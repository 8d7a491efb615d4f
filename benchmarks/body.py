"""What every benchmarked job does, the same for each system: one small write to Redis.

Each process makes its own client on first use (after any fork), from $BENCH_REDIS_URL.
"""

from __future__ import annotations

import os
import time

import redis

COUNTER = "bench:counter"  # A: INCR per job
LATENCY = "bench:latency"  # B: seconds from push to start, per job
LATENESS = "bench:lateness"  # C: seconds from due time to start, per job (negative: early)

_client: redis.Redis | None = None
_pid = 0


def client() -> redis.Redis:
    global _client, _pid
    if _client is None or _pid != os.getpid():
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
        _pid = os.getpid()
    return _client


def incr() -> None:
    client().incr(COUNTER)


def picked_up(pushed_at: float) -> None:
    started = time.time()
    client().rpush(LATENCY, started - pushed_at)


def ran_at_due(due: float) -> None:
    started = time.time()
    client().rpush(LATENESS, started - due)
