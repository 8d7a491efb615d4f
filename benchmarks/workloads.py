"""Workloads A-E, each one run of one system; every function returns one JSON-able record.

A  throughput: push N tiny jobs one by one (and with the bulk API), then start 2 workers and time
   them from the first job seen done to the last (the counter is polled every 2 ms).
B  pickup latency: booted, warmed and idle workers; 500 jobs pushed at 100/s; push -> start.
C  delayed: 200 jobs due evenly over +2..+4 s; start - due (negative: ran early).
D  memory: taken in B after the idle pause and in A right when the last job is done.
E  redis-benchmark, when installed: LPUSH and RPOP, without and with pipelining.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from benchmarks import body
from benchmarks.procs import Group
from benchmarks.runner import Bench
from benchmarks.stats import percentile
from benchmarks.targets import Target


def throughput(b: Bench, t: Target, n: int, cap: float, workers: int = 2) -> dict:
    """Workload A (and D after it)."""
    rec: dict = {"workload": "A", "system": t.name, "n": n, "workers": workers}
    if t.bulk:
        b.flush()
        out = b.produce(t, "bulk", n)
        rec["push_many_per_s"] = n / out["seconds"]
    b.flush()
    out = b.produce(t, "single", n)
    rec["push_per_s"] = n / out["seconds"]
    timed = b.time_processing(lambda: b.start(t, workers, f"A{workers}"), n, cap, Group.memory)
    rec["memory_after"] = timed.pop("memory")
    rec.update(timed)
    return rec


def warm(b: Bench, t: Target) -> bool:
    """Push one job and wait for it: the workers are up and connected."""
    b.produce(t, "single", 1)
    return b.wait_counter(1, timeout=60, poll=0.02)[2] >= 1


def pickup(b: Bench, t: Target, n: int = 500, rate: float = 100.0) -> dict:
    """Workload B (and D idle)."""
    rec: dict = {"workload": "B", "system": t.name, "n": n}
    b.flush()
    group = b.start(t, 2, "B")
    try:
        rec["warm"] = warm(b, t)
        time.sleep(2.0)
        rec["memory_idle"] = group.memory()
        b.produce(t, "latency", n, rate)
        ms = [s * 1000 for s in b.wait_samples(body.LATENCY, n, timeout=30)]
    finally:
        group.stop()
    rec.update(_summary(ms))
    return rec


def delayed(b: Bench, t: Target, n: int = 200) -> dict:
    """Workload C."""
    rec: dict = {"workload": "C", "system": t.name, "n": n}
    b.flush()
    group = b.start(t, 2, "C", scheduler=True)
    try:
        rec["warm"] = warm(b, t)
        time.sleep(1.0)
        rec["push_s"] = b.produce(t, "delayed", n)["push_seconds"]
        ms = [s * 1000 for s in b.wait_samples(body.LATENESS, n, timeout=30)]
    finally:
        group.stop()
    rec.update(_summary(ms))
    rec["early"] = sum(1 for v in ms if v < 0)
    rec["min_ms"] = min(ms) if ms else None
    return rec


def _summary(ms: list[float]) -> dict:
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 0.5),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms) if ms else None,
    }


def redis_benchmark(b: Bench, port: int, requests: int = 100_000) -> dict | None:
    """Workload E, second half: the server's own ceiling for the list commands a queue uses."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return None
    rec: dict = {"workload": "E", "system": "redis-benchmark"}
    for pipeline in (1, 16):
        b.flush()
        argv = [exe, "-h", "127.0.0.1", "-p", str(port), "-t", "lpush,rpop", "-n", str(requests)]
        argv += ["-P", str(pipeline), "-q", "--csv"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout
        for line in out.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if cells and cells[0] in ("LPUSH", "RPOP"):
                rec[f"{cells[0].lower()}_P{pipeline}_per_s"] = float(cells[1])
    b.flush()
    return rec
