"""The systems under test: which interpreter runs them, how their workers start, what they are.

jobpool and the raw floor run in the project's own virtualenv (.venv, the same redis-py and
hiredis); the peers in .venv-bench, arq in .venv-bench-arq (it pins an older redis-py).
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
class Target:
    name: str
    bin: Path  # the virtualenv's bin directory
    module: str  # benchmarks.systems.X: jobs and producer
    layout: str  # "pool": a master forks the job-running processes; "flat": each runs jobs
    argv: Callable[[Target, int, bool, dict[str, str]], list[list[str]]]  # n, scheduler, env
    bulk: str | None  # what its bulk push is, if it has one
    delayed: bool  # has delayed jobs (workload C)
    note: str  # delivery promise and settings, for the docs
    root: Path = ROOT  # the checkout whose jobpool (and benchmarks) it imports

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def available(self) -> bool:
        return (self.bin / "python").exists()

    def workers(self, n: int, env: dict[str, str], scheduler: bool = False) -> list[list[str]]:
        """Command lines that start n job-running processes; `env` as the benchmark sets it."""
        return self.argv(self, n, scheduler, env)


def _jobpool(t: Target, n: int, scheduler: bool, env: dict[str, str]) -> list[list[str]]:
    return [[t.python, "-m", "jobpool.cli", "start", "-c", env["BENCH_JOBPOOL_CONFIG"]]]


def _raw(t: Target, n: int, scheduler: bool, env: dict[str, str]) -> list[list[str]]:
    return [[t.python, "-m", "benchmarks.systems.raw_app", "worker"] for _ in range(n)]


def _rq(simple: bool) -> Callable[[Target, int, bool, dict[str, str]], list[list[str]]]:
    def argv(t: Target, n: int, scheduler: bool, env: dict[str, str]) -> list[list[str]]:
        cmd = [str(t.bin / "rq"), "worker", "-u", env["BENCH_REDIS_URL"]]
        cmd += ["--logging_level", "WARNING"]
        cmd += ["-w", "rq.worker.SimpleWorker"] if simple else []
        cmd += ["--with-scheduler"] if scheduler else []
        return [cmd for _ in range(n)]

    return argv


def _dramatiq(t: Target, n: int, scheduler: bool, env: dict[str, str]) -> list[list[str]]:
    return [
        [str(t.bin / "dramatiq"), t.module, "--processes", str(n), "--threads", "1"],
    ]


def _celery(t: Target, n: int, scheduler: bool, env: dict[str, str]) -> list[list[str]]:
    cmd = [str(t.bin / "celery"), "-A", t.module, "worker", "-c", str(n), "-P", "prefork"]
    return [[*cmd, "--loglevel", "WARNING"]]


def _huey(t: Target, n: int, scheduler: bool, env: dict[str, str]) -> list[list[str]]:
    return [[str(t.bin / "huey_consumer"), f"{t.module}.huey", "-w", str(n), "-k", "process", "-q"]]


def _arq(t: Target, n: int, scheduler: bool, env: dict[str, str]) -> list[list[str]]:
    return [[t.python, "-m", t.module, "worker"] for _ in range(n)]


S = "benchmarks.systems."
TARGETS = {
    t.name: t
    for t in (
        Target("raw", VENV, S + "raw_app", "flat", _raw, "pipelined RPUSH x1000", False,
               "floor: BLMOVE + INCR/LREM; no status, retries or delays"),
        Target("jobpool", VENV, S + "jobpool_app", "pool", _jobpool, "push_many x1000", True,
               "at-least-once, status records; `jobpool start`, 2 workers, default prefetch (32)"),
        Target("huey", PEERS, S + "huey_app", "pool", _huey, None, True,
               "at-most-once (a killed worker loses its job); -k process -w 2"),
        Target("celery", PEERS, S + "celery_app", "pool", _celery, None, True,
               "early ack (at-most-once by default); prefork -c 2, no result backend"),
        Target("dramatiq", PEERS, S + "dramatiq_app", "pool", _dramatiq, None, True,
               "at-least-once after a heartbeat timeout; --processes 2 --threads 1"),
        Target("rq-simple", PEERS, S + "rq_app", "flat", _rq(True), "enqueue_many x1000", True,
               "SimpleWorker x2 (no fork per job); --with-scheduler for C"),
        Target("rq-fork", PEERS, S + "rq_app", "flat", _rq(False), "enqueue_many x1000", True,
               "default Worker x2 (forks per job); --with-scheduler for C"),
        Target("arq", ARQ, S + "arq_app", "flat", _arq, None, True,
               "asyncio, 2 processes x max_jobs 10; results kept 1 h"),
    )
}  # fmt: skip
PEER_NAMES = [n for n in TARGETS if n not in ("raw", "jobpool")]


def variant(checkout: Path) -> Target:
    """jobpool from another checkout (a prototype), run beside this one: `--compare DIR`."""
    root = checkout.resolve()
    return replace(TARGETS["jobpool"], name=f"jobpool@{root.name}", root=root, note=str(root))
