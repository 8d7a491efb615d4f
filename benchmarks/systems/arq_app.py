"""arq (asyncio; its own virtualenv, for its redis-py pin): functions, worker and producer.

`python -m benchmarks.systems.arq_app worker [MAX_JOBS]` runs one worker process (arq's defaults:
up to 10 jobs at once, results kept 1 h) with WARNING logging; any other command is the producer,
whose loops are the same as benchmarks.producer's, written with await.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from urllib.parse import urlparse

from arq import create_pool
from arq.connections import RedisSettings

_url = urlparse(os.environ["BENCH_REDIS_URL"])
SETTINGS = RedisSettings(host=_url.hostname or "127.0.0.1", port=_url.port or 6379)
# The same keys as benchmarks.body's.
LATENCY, LATENESS, COUNTER = "bench:latency", "bench:lateness", "bench:counter"


async def incr(ctx) -> None:
    await ctx["redis"].incr(COUNTER)


async def latency(ctx, pushed_at: float) -> None:
    await ctx["redis"].rpush(LATENCY, time.time() - pushed_at)


async def delayed(ctx, due: float) -> None:
    await ctx["redis"].rpush(LATENESS, time.time() - due)


async def io(ctx, seconds: float) -> None:
    """Workload G: benchmarks.body.io_wait, awaited."""
    await asyncio.sleep(seconds)
    await ctx["redis"].incr(COUNTER)


class WorkerSettings:
    functions = [incr, latency, delayed, io]
    redis_settings = SETTINGS


async def produce(command: str, n: int, arg: float) -> dict[str, object]:
    """arg: the rate of `latency`, the wait of `io`."""
    pool = await create_pool(SETTINGS)
    out: dict[str, object] = {"command": command, "n": n}
    started = time.perf_counter()
    if command == "single":
        for _ in range(n):
            await pool.enqueue_job("incr")
        out["seconds"] = time.perf_counter() - started
    elif command == "latency":
        next_at = time.perf_counter()
        for _ in range(n):
            await pool.enqueue_job("latency", time.time())
            next_at += 1.0 / arg  # the rate
            await asyncio.sleep(max(next_at - time.perf_counter(), 0))
    elif command == "delayed":
        base = time.time()
        for i in range(n):
            due = base + 2.0 + 2.0 * i / max(n - 1, 1)
            await pool.enqueue_job("delayed", due, _defer_by=max(due - time.time(), 0.0))
        out["push_seconds"] = time.time() - base
    elif command == "io":
        for _ in range(n):
            await pool.enqueue_job("io", arg)  # the wait
        out["seconds"] = time.perf_counter() - started
    # "bulk": arq has no bulk API; nothing to time
    await pool.aclose()
    return out


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        from arq.worker import run_worker

        logging.basicConfig(level=logging.WARNING)
        if len(sys.argv) > 2:  # G: jobs at once
            WorkerSettings.max_jobs = int(sys.argv[2])
        run_worker(WorkerSettings)
    else:
        arg = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
        print(json.dumps(asyncio.run(produce(sys.argv[1], int(sys.argv[2]), arg))), flush=True)
