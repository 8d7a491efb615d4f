"""What every benchmarked job does, the same for each system: one small write to Redis.

Each process makes its own client on first use (after any fork), from $BENCH_REDIS_URL; threads
share it (redis-py's client takes a connection from its pool for each command).
"""

from __future__ import annotations

import os
import time

import redis

COUNTER = "bench:counter"  # A and G: INCR per job
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


def io_wait(seconds: float) -> None:
    """Workload G: wait as a call to a slow service would (the GIL released), then one INCR."""
    time.sleep(seconds)
    client().incr(COUNTER)
