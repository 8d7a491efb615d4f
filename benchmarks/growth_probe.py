"""Workload F's measurements inside one process of jobpool's virtualenv (run by benchmarks.growth).

    python -m benchmarks.growth_probe jobpool|raw fill N PAYLOAD [DELAY_S]  fill the queue
    python -m benchmarks.growth_probe jobpool|raw push M PAYLOAD            µs per single push
    python -m benchmarks.growth_probe jobpool|raw claim M                   µs per job, by a worker

`claim` runs M jobs through the same loop `jobpool start`'s workers run (claim up to prefetch 8,
start, run the job, which does one INCR, acknowledge); for raw, BLMOVE then INCR + LREM.
"""

from __future__ import annotations

import json
import os
import sys
import time

from benchmarks import body
from benchmarks.systems import raw_app

FILL_CHUNK = 1000


def _data(size: int) -> str:
    return "x" * size


def jobpool_fill(n: int, size: int, delay: float) -> None:
    from benchmarks.systems.jobpool_app import PayloadJob
    from jobpool import QueueManager

    qm = QueueManager.from_config(os.environ["BENCH_JOBPOOL_CONFIG"])
    queue = qm.default_queue
    for i in range(0, n, FILL_CHUNK):
        jobs = [PayloadJob(_data(size)) for _ in range(min(FILL_CHUNK, n - i))]
        if delay:  # later() has no bulk form; the driver's enqueue is what it calls
            entries = [qm._prepare(job, queue) for job in jobs]  # noqa: SLF001
            qm.driver.enqueue(queue, entries, delay=delay + i / 1000)
        else:
            qm.push_many(jobs)


def jobpool_push(m: int, size: int) -> float:
    from benchmarks.systems.jobpool_app import PayloadJob
    from jobpool import QueueManager

    qm = QueueManager.from_config(os.environ["BENCH_JOBPOOL_CONFIG"])
    data = _data(size)
    started = time.perf_counter()
    for _ in range(m):
        qm.push(PayloadJob(data))
    return time.perf_counter() - started


def jobpool_claim(m: int) -> float:
    from benchmarks.systems import jobpool_app  # noqa: F401 - registers the job classes
    from jobpool import QueueManager, Worker

    qm = QueueManager.from_config(os.environ["BENCH_JOBPOOL_CONFIG"])
    worker = Worker(qm, prefetch=8)
    started = time.perf_counter()
    worker.run(max_jobs=m, install_signals=False, keep_lease=False)
    return time.perf_counter() - started


def raw_fill(n: int, size: int, delay: float) -> None:
    r = body.client()
    pipe = r.pipeline(transaction=False)
    pad = _data(size)
    for i in range(n):
        pipe.rpush(raw_app.READY, f"incr {i} {pad}")
        if i % FILL_CHUNK == FILL_CHUNK - 1:
            pipe.execute()
    pipe.execute()


def raw_push(m: int, size: int) -> float:
    r, pad = body.client(), _data(size)
    started = time.perf_counter()
    for i in range(m):
        r.rpush(raw_app.READY, f"incr p{i} {pad}")
    return time.perf_counter() - started


def raw_claim(m: int) -> float:
    r = body.client()
    processing = f"bench:raw:processing:{os.getpid()}"
    pipe = r.pipeline(transaction=False)
    started = time.perf_counter()
    for _ in range(m):
        message = r.blmove(raw_app.READY, processing, 1, "LEFT", "RIGHT")
        pipe.incr(body.COUNTER)
        pipe.lrem(processing, 1, message)
        pipe.execute()
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    system, action, n = argv[0], argv[1], int(argv[2])
    fns = {"jobpool": (jobpool_fill, jobpool_push, jobpool_claim),
           "raw": (raw_fill, raw_push, raw_claim)}[system]  # fmt: skip
    out: dict[str, float] = {}
    if action == "fill":
        started = time.perf_counter()
        fns[0](n, int(argv[3]), float(argv[4]) if len(argv) > 4 else 0.0)
        out["fill_s"] = time.perf_counter() - started
    elif action == "push":
        out["push_us"] = fns[1](n, int(argv[3])) / n * 1e6
    elif action == "claim":
        out["claim_us"] = fns[2](n) / n * 1e6
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
