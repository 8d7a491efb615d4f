"""Shared plumbing of the workloads: one Redis, the environment, producers, worker pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from benchmarks import body
from benchmarks.procs import Group
from benchmarks.targets import ROOT, Target

JOBPOOL_CONFIG = """\
# written by the benchmark: the smallest config that runs the bench jobs
imports = ["benchmarks.systems.jobpool_app"]
log_level = "warning"

[redis]
url = "{url}"

[pool]
workers = {workers}
"""
# Workload G: jobs at once in each worker process. Written only when above 1, so that the other
# workloads run on a config any jobpool accepts.
JOBPOOL_CONCURRENCY = """
[queues.default]
concurrency = {concurrency}
"""


class Bench:
    """What every workload needs: the Redis (FLUSHALLed between runs) and how to drive systems."""

    def __init__(self, url: str, run_dir: Path, verbose: bool = True):
        self.url = url
        self.run_dir = run_dir
        self.r = redis.Redis.from_url(url)
        self.verbose = verbose
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def say(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def jobpool_config(self, workers: int = 2, concurrency: int = 1) -> Path:
        """The config `jobpool start` and jobpool's producer read: `workers` processes, each
        running up to `concurrency` jobs at once ([queues.default] concurrency, when above 1)."""
        text = JOBPOOL_CONFIG.format(url=self.url, workers=workers)
        name = f"jobpool-{workers}.toml"
        if concurrency > 1:
            text += JOBPOOL_CONCURRENCY.format(concurrency=concurrency)
            name = f"jobpool-{workers}x{concurrency}.toml"
        config = self.run_dir / name
        config.write_text(text)
        return config

    def env(self, workers: int = 2, root: Path = ROOT, concurrency: int = 1) -> dict[str, str]:
        config = self.jobpool_config(workers, concurrency)
        env = dict(os.environ)
        for key in [k for k in env if k.startswith(("REDIS_", "QUEUE_", "JOBPOOL_"))]:
            del env[key]  # jobpool would let them override the config
        env.update(
            BENCH_REDIS_URL=self.url,
            BENCH_JOBPOOL_CONFIG=str(config),
            PYTHONPATH=os.pathsep.join(dict.fromkeys([str(root), str(ROOT)])),
            PYTHONUNBUFFERED="1",
        )
        return env

    def flush(self) -> None:
        self.r.flushall()

    def produce(self, target: Target, *args: object, timeout: float = 600) -> dict:
        argv = [target.python, "-m", target.module, *map(str, args)]
        done = subprocess.run(
            argv,
            cwd=self.run_dir,
            env=self.env(root=target.root),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{target.name} producer {args} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(
        self, target: Target, workers: int, tag: str, scheduler: bool = False, threads: int = 1
    ) -> Group:
        """Start `workers` job-running processes of `target`, each running up to `threads` jobs
        at once (workload G; 1 elsewhere)."""
        env = self.env(workers, target.root, concurrency=threads)
        argvs = target.workers(workers, env, scheduler, threads)
        log = self.run_dir / "logs" / f"{target.name}.{tag}.log"
        return Group(argvs, target.layout, env, self.run_dir, log)

    def time_processing(
        self, start: Callable[[], Group], n: int, cap: float, memory: Callable[[Group], object]
    ) -> dict:
        """Start the workers (`start()`), time them through `n` jobs (cut off `cap` s after
        the first), read their `memory()` while they still run, and stop them: the record's
        done, complete, memory and, once jobs ran, boot_s and processing_per_s."""
        booted = time.monotonic()
        group = start()
        try:
            first, first_at, last, last_at = self.wait_counter(n, timeout=cap + 60, cap=cap)
            used = memory(group)
        finally:
            group.stop()
        rec: dict = {"done": last, "complete": last >= n, "memory": used}
        if first_at is not None and last > first:
            rec["boot_s"] = first_at - booted
            rec["processing_per_s"] = (last - first) / (last_at - first_at)
        return rec

    def counter(self) -> int:
        return int(self.r.get(body.COUNTER) or 0)

    def wait_counter(
        self, target: int, timeout: float, cap: float | None = None, poll: float = 0.002
    ) -> tuple[int, float | None, int, float]:
        """Poll the counter until it reaches `target`; stop `cap` s after the first job, or at
        `timeout`. Returns (first value seen above 0, when, last value, when)."""
        started = time.monotonic()
        first: tuple[int, float] | None = None
        while True:
            value, now = self.counter(), time.monotonic()
            if value and first is None:
                first = (value, now)
            if value >= target or now - started > timeout:
                break
            if cap is not None and first is not None and now - first[1] > cap:
                break
            time.sleep(poll)
        return (first[0], first[1], value, now) if first else (0, None, value, now)

    def wait_samples(self, key: str, n: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while self.r.llen(key) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return [float(x) for x in self.r.lrange(key, 0, -1)]
