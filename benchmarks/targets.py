"""The systems under test: which interpreter runs them, how their workers start, what they are.

jobpool and the raw floor run in the project's own virtualenv (.venv, the same redis-py and
hiredis); the peers in .venv-bench, arq in .venv-bench-arq (it pins an older redis-py).
`jobpool-fn` is jobpool again, with its tiny job written as a `@job` function instead of a Job
class (workload A only), so that the two are compared in the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
PEERS = ROOT / ".venv-bench" / "bin"
ARQ = ROOT / ".venv-bench-arq" / "bin"


@dataclass(frozen=True)
class IoSetup:
    """How a system runs workload G (I/O-bound jobs): processes x jobs at once in each."""

    processes: int
    threads: int  # jobs one process runs at once (threads, or asyncio tasks for arq)
    note: str  # for the docs

    @property
    def slots(self) -> int:
        return self.processes * self.threads


Argv = Callable[["Target", int, bool, dict[str, str], int], list[list[str]]]


@dataclass(frozen=True)
class Target:
    name: str
    bin: Path  # the virtualenv's bin directory
    module: str  # benchmarks.systems.X: jobs and producer
    layout: str  # "pool": a master forks the job-running processes; "flat": each runs jobs
    argv: Argv  # (target, processes, scheduler, env, threads) -> command lines
    bulk: str | None  # what its bulk push is, if it has one
    delayed: bool  # has delayed jobs (workload C)
    note: str  # delivery promise and settings, for the docs
    root: Path = ROOT  # the checkout whose jobpool (and benchmarks) it imports
    workloads: str = "ABC"  # which of the workloads A, B and C it runs
    io: IoSetup | None = None  # how it runs workload G, if it does

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def available(self) -> bool:
        return (self.bin / "python").exists()

    def workers(
        self, n: int, env: dict[str, str], scheduler: bool = False, threads: int = 1
    ) -> list[list[str]]:
        """Command lines that start n job-running processes, each running up to `threads` jobs
        at once (1: one at a time, the systems' settings in A-C); `env` as the benchmark sets
        it (jobpool's threads are in the config file it names)."""
        return self.argv(self, n, scheduler, env, threads)


def _jobpool(
    t: Target, n: int, scheduler: bool, env: dict[str, str], threads: int
) -> list[list[str]]:
    return [[t.python, "-m", "jobpool.cli", "start", "-c", env["BENCH_JOBPOOL_CONFIG"]]]


def _raw(t: Target, n: int, scheduler: bool, env: dict[str, str], threads: int) -> list[list[str]]:
    return [[t.python, "-m", "benchmarks.systems.raw_app", "worker"] for _ in range(n)]


def _rq(simple: bool) -> Argv:
    def argv(
        t: Target, n: int, scheduler: bool, env: dict[str, str], threads: int
    ) -> list[list[str]]:
        cmd = [str(t.bin / "rq"), "worker", "-u", env["BENCH_REDIS_URL"]]
        cmd += ["--logging_level", "WARNING"]
        cmd += ["-w", "rq.worker.SimpleWorker"] if simple else []
        cmd += ["--with-scheduler"] if scheduler else []
        return [cmd for _ in range(n)]

    return argv


def _dramatiq(
    t: Target, n: int, scheduler: bool, env: dict[str, str], threads: int
) -> list[list[str]]:
    return [
        [str(t.bin / "dramatiq"), t.module, "--processes", str(n), "--threads", str(threads)],
    ]


def _celery(
    t: Target, n: int, scheduler: bool, env: dict[str, str], threads: int
) -> list[list[str]]:
    cmd = [str(t.bin / "celery"), "-A", t.module, "worker", "--loglevel", "WARNING"]
    if threads == 1:  # one prefork pool of n child processes
        return [[*cmd, "-c", str(n), "-P", "prefork"]]
    # n worker processes of `threads` threads each, with node names of their own
    return [[*cmd, "-c", str(threads), "-P", "threads", "-n", f"bench{i}@%h"] for i in range(n)]


def _huey(t: Target, n: int, scheduler: bool, env: dict[str, str], threads: int) -> list[list[str]]:
    cmd = [str(t.bin / "huey_consumer"), f"{t.module}.huey", "-q"]
    if threads == 1:  # one consumer with n worker processes
        return [[*cmd, "-w", str(n), "-k", "process"]]
    return [[*cmd, "-w", str(threads), "-k", "thread"] for _ in range(n)]


def _arq(t: Target, n: int, scheduler: bool, env: dict[str, str], threads: int) -> list[list[str]]:
    max_jobs = [] if threads == 1 else [str(threads)]  # 1: arq's default (10)
    return [[t.python, "-m", t.module, "worker", *max_jobs] for _ in range(n)]


S = "benchmarks.systems."
TARGETS = {
    t.name: t
    for t in (
        Target("raw", VENV, S + "raw_app", "flat", _raw, "pipelined RPUSH x1000", False,
               "floor: BLMOVE + INCR/LREM; no status, retries or delays"),
        Target("jobpool", VENV, S + "jobpool_app", "pool", _jobpool, "push_many x1000", True,
               "at-least-once, status records; `jobpool start`, 2 workers, default prefetch (32)",
               io=IoSetup(1, 32, "`jobpool start`, 1 worker, `concurrency = 32` (the 32 jobs at "
                          "once Dramatiq runs in 2 processes, in one)")),
        Target("jobpool-fn", VENV, S + "jobpool_fn_app", "pool", _jobpool, "push_many x1000",
               True, "jobpool as above, its tiny job a `@job` function pushed with `.push()` "
               "instead of a Job class (workload A only)", workloads="A"),
        Target("huey", PEERS, S + "huey_app", "pool", _huey, None, True,
               "at-most-once (a killed worker loses its job); -k process -w 2",
               io=IoSetup(1, 16, "one consumer, -k thread -w 16")),
        Target("celery", PEERS, S + "celery_app", "pool", _celery, None, True,
               "early ack (at-most-once by default); prefork -c 2, no result backend",
               io=IoSetup(1, 16, "one worker, -P threads -c 16")),
        Target("dramatiq", PEERS, S + "dramatiq_app", "pool", _dramatiq, None, True,
               "at-least-once after a heartbeat timeout; --processes 2 --threads 1",
               io=IoSetup(2, 16, "--processes 2 --threads 16")),
        Target("rq-simple", PEERS, S + "rq_app", "flat", _rq(True), "enqueue_many x1000", True,
               "SimpleWorker x2 (no fork per job); --with-scheduler for C"),
        Target("rq-fork", PEERS, S + "rq_app", "flat", _rq(False), "enqueue_many x1000", True,
               "default Worker x2 (forks per job); --with-scheduler for C"),
        Target("arq", ARQ, S + "arq_app", "flat", _arq, None, True,
               "asyncio, 2 processes x max_jobs 10; results kept 1 h",
               io=IoSetup(1, 32, "one process, max_jobs 32 (asyncio tasks); its default poll_delay "
                          "(0.5 s) starts about max_jobs jobs per poll")),
    )
}  # fmt: skip
PEER_NAMES = [n for n in TARGETS if n != "raw" and not n.startswith("jobpool")]


def variant(checkout: Path) -> Target:
    """jobpool from another checkout (a prototype), run beside this one: `--compare DIR`."""
    root = checkout.resolve()
    return replace(TARGETS["jobpool"], name=f"jobpool@{root.name}", root=root, note=str(root))
