"""The chaos run: prove that `jobpool start` loses no job while its workers, its master and its
Redis are killed under load.

It starts a private redis-server (AOF on, `appendfsync always`, so a SIGKILLed server restarts
with every acknowledged write), a real `jobpool start` serving three queues, and pushes jobs over
a few seconds: immediate ones, delayed ones, ones that fail a few times before they succeed, and
a few that fail for good by design. Meanwhile it SIGKILLs random workers, SIGKILLs the master with
its whole process group once and starts it again, and SIGKILLs and restarts redis-server once.

Every run of a job writes one entry to the hash `chaos:runs` (field `KEY|TOKEN`, value
`PID|ok-or-fail|TIME`), with HSET, which is idempotent, so a write resent after a dropped
connection cannot count twice. At the end, with the master drained, every pushed job is
classified from its status record and the queue's keys:

- completed, failed as designed, failed unexpectedly;
- lost: never finished and not queued (no record, or a waiting record in no list);
- stuck: left in flight (in a worker's in-progress list, or `processing`) after the drain;
- still queued: not finished when the time ran out;
- run twice: completed by more than one run; each is explained when every run before the
  last was made by a worker this script killed (it died before its ack: at-least-once).

With `--sentinel` the Redis is a Sentinel deployment instead (tests/support/sentinel.py: a
primary, a replica and three sentinels on loopback ports, Debian's redis-server and
redis-sentinel), jobpool reaches it through the sentinels with `wait_replicas = 1`, and the
faults are two `SENTINEL FAILOVER`s and one SIGKILL of the primary (besides the worker kills;
no master kill, no restart in place). A job run twice is then also explained when its earlier
run ended near a failover (its outcome was not yet replicated); those are counted per failover,
and the time workers took to reach the new primary (reconnect) is measured until a job run is
recorded on it. The sentinels may also fail over on their own (a sentinel that judges a primary
down): such failovers are read from their logs, reported, and explain a job run twice the same
way.

The run passes with nothing lost, stuck, still queued, failed unexpectedly or run twice without a
kill or a failover to explain it. `scripts/chaos --help` lists the knobs; tests/processes/
test_chaos.py runs a small one (test_sentinel_chaos.py a small Sentinel one).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import redis

from jobpool import Job, QueueManager, current_manager, defaults
from jobpool.drivers.redis.embedded import find_redis_server
from jobpool.errors import ReplicationError

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
RUNS = "chaos:runs"  # KEY|TOKEN -> PID|ok|TIME or PID|fail|TIME, one field per run
TRIES = "chaos:tries"  # KEY -> runs started (decides when a flaky job stops failing)
PREFIX = defaults.PREFIX  # the config it writes sets none, and JOBPOOL_PREFIX is unset
T = TypeVar("T")


# -- the job ---------------------------------------------------------------------------------


def _patiently(step: Callable[[], T], limit: float = 60.0) -> T:
    """Run a Redis command, retrying while the server restarts."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return step()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _replicated(client: redis.Redis, write: Callable[[], T]) -> T:
    """`write`, then WAIT for a replica; without one in time (a primary cut off by a failover),
    reconnect and write again, so that a run is recorded where the queue goes on."""
    while True:
        value = write()
        if int(client.execute_command("WAIT", 1, 1000)) >= 1:
            return value
        client.connection_pool.disconnect()


class ChaosJob(Job, name="chaos.job"):
    """Records each run; fails its first `fail_first` runs (all of them when `doomed`)."""

    max_tries = 12  # room for the designed failures plus a few deaths
    retry_delay = 0.1

    def __init__(
        self,
        key: str,
        work: float,
        fail_first: int = 0,
        doomed: bool = False,
        durable: bool = False,
    ):
        self.key, self.work, self.fail_first, self.doomed = key, work, fail_first, doomed
        self.durable = durable  # record runs only once a replica has them (Sentinel runs)

    def handle(self) -> None:
        client = current_manager().driver.client
        tries = _patiently(lambda: client.hincrby(TRIES, self.key, 1))
        time.sleep(self.work / 2)
        ok = not self.doomed and tries > self.fail_first
        token = f"{self.key}|{os.getpid()}.{os.urandom(4).hex()}"
        value = f"{os.getpid()}|{'ok' if ok else 'fail'}|{time.time():.6f}"
        if self.durable:
            _patiently(lambda: _replicated(client, lambda: client.hset(RUNS, token, value)))
        else:
            _patiently(lambda: client.hset(RUNS, token, value))
        time.sleep(self.work / 2)  # a kill now makes the run count but not the ack
        if not ok:
            raise RuntimeError(f"run {tries} of {self.key} fails on purpose")


# -- the processes ---------------------------------------------------------------------------


class AofRedis:
    """A redis-server on a unix socket with AOF fsynced on every write; SIGKILL loses nothing."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.socket_path = workdir / "redis.sock"
        self.url = f"unix://{self.socket_path}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        argv = [find_redis_server(), "--port", "0", "--unixsocket", str(self.socket_path)]
        argv += ["--unixsocketperm", "700", "--dir", str(self.workdir), "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--hz", "100"]
        argv += ["--daemonize", "no", "--logfile", str(self.workdir / "redis.log")]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.workdir}/redis.log")
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class SentinelRedis:
    """A primary, a replica and three sentinels (tests/support/sentinel.py); jobpool reaches
    the primary through the sentinels, and follows it across the failovers of the run."""

    def __init__(self, workdir: Path):
        sys.path.insert(0, str(ROOT / "tests" / "support"))
        from sentinel import SentinelSet

        self.set = SentinelSet(workdir)
        self.url = self.set.url

    def start(self) -> None:
        self.set.start()

    def kill(self) -> None:
        self.set.stop()

    def fail_over(self, kill: bool, began: float) -> float:
        """SENTINEL FAILOVER (or SIGKILL of the primary); seconds from `began` until the new
        primary accepts writes (the rest of the set heals after that)."""
        served: list[float] = []
        self.set.on_new_primary = lambda: served.append(time.monotonic())
        if kill:
            self.set.kill_primary()
        else:
            self.set.failover()
        return served[0] - began

    def first_run_after(self, began: float, limit: float = 30.0) -> float:
        """Seconds from `began` until a job run is recorded on the primary: the workers (and
        the jobs' own client) reached it. The primary is asked for anew as the runs are
        counted: the sentinels may replace it again on their own (see unplanned())."""
        with self.set.primary() as primary:
            before = int(primary.hlen(RUNS))
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError), self.set.primary() as primary:
                if int(primary.hlen(RUNS)) > before:
                    break
            time.sleep(0.005)
        return time.monotonic() - began

    def unplanned(self, planned: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """The sentinels' own failovers (new primary named, old one demoted), in Unix time:
        the switches of primary that none of the `planned` (began, served) failovers made.
        Each of those made one: the first switch from its start until it served."""
        left = self.set.switches()
        for began, served in planned:
            mine = [s for s in left if began - 0.5 <= s[0] <= served + 1]
            if mine:
                left.remove(mine[0])
        return left


class Master:
    """`jobpool start` in its own process group, logging to a file."""

    def __init__(self, config: Path, log_path: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_"))}
        env.pop("JOBPOOL_PREFIX", None)
        paths = [str(ROOT), str(SCRIPTS), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobpool.cli", "start", "-c", str(config)],
                cwd=config.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def workers(self) -> dict[int, str]:
        """pid -> title of the live worker children."""
        found = {}
        try:
            children = psutil.Process(self.pid).children()
        except psutil.Error:
            return {}
        for child in children:
            with contextlib.suppress(psutil.Error):
                title = " ".join(child.cmdline()).strip()
                if title.startswith("jobpool: worker ") and child.status() != "zombie":
                    found[child.pid] = title
        return found

    def wait_workers(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.workers()) < count:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jobpool start exited {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self.workers())} of {count} workers came up")
            time.sleep(0.05)

    def kill_group(self) -> list[int]:
        """SIGKILL the master and every process under it; returns the pids killed."""
        # Workers lead process groups of their own: stop the master so that it cannot react,
        # then kill every descendant, then the master.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGSTOP)
        family: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            family = psutil.Process(self.pid).children(recursive=True)
        for proc in family:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(10)
        return [self.pid, *(proc.pid for proc in family)]

    def drain(self, timeout: float) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            return -9


# -- the plan and its result -----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    jobs: int = 10_000
    queues: tuple[str, ...] = ("alpha", "beta", "gamma")
    workers: int = 3  # per queue
    concurrency: int = 1  # of the first queue: jobs each of its workers runs at once
    kills: int = 50  # random workers SIGKILLed
    duration: float = 30.0  # seconds over which jobs are pushed and faults happen
    delayed: float = 0.2  # share of jobs pushed with later()
    flaky: float = 0.15  # share that fail 1-3 times before they succeed
    doomed: float = 0.02  # share that fail for good (max_tries 2)
    work: float = 0.01  # longest sleep of a job, seconds
    lease: float = 3.0
    finish_timeout: float = 120.0  # after the faults, how long the pool may take to finish
    seed: int | None = None
    sentinel: bool = False  # a Sentinel deployment, failed over twice and killed once


@dataclass
class Result:
    pushed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    failed_as_designed: int = 0
    failed_unexpectedly: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    still_queued: list[str] = field(default_factory=list)
    completed_without_a_run: list[str] = field(default_factory=list)
    run_twice: int = 0
    explained: int = 0
    unexplained: list[str] = field(default_factory=list)
    runs: int = 0
    worker_kills: int = 0
    master_kills: int = 0
    redis_restarts: int = 0
    failovers: list[str] = field(default_factory=list)  # "SENTINEL FAILOVER" or "SIGKILL"
    failover_seconds: list[float] = field(default_factory=list)  # until the new primary served
    reconnect_seconds: list[float] = field(default_factory=list)  # until workers wrote again
    by_failover: int = 0  # run twice: the earlier run ended just before a failover
    unplanned_failovers: int = 0  # made by the sentinels on their own (see SentinelSet.switches)
    unconfirmed_pushes: int = 0  # pushes that raised ReplicationError (stored on the primary)
    worker_replacements: int = 0  # workers that exited for another reason than our kills
    seconds: float = 0.0
    workdir: str = ""

    @property
    def passed(self) -> bool:
        return not (
            self.lost
            or self.stuck
            or self.still_queued
            or self.failed_unexpectedly
            or self.completed_without_a_run
            or self.unexplained
        )

    def report(self) -> str:
        def show(ids: list[str]) -> str:
            return f"{len(ids)}" + (f"  e.g. {', '.join(ids[:3])}" if ids else "")

        kinds = ", ".join(f"{n} {k}" for k, n in self.kinds.items())
        if self.failovers:
            faults = (
                f"{self.worker_kills} workers SIGKILLed; failovers: {', '.join(self.failovers)} "
                f"(new primary serving after {_seconds(self.failover_seconds)}; workers "
                f"writing to it again after {_seconds(self.reconnect_seconds)}); the sentinels' "
                f"own failovers: {self.unplanned_failovers}; workers replaced for other "
                f"reasons: {self.worker_replacements}"
            )
        else:
            faults = (
                f"{self.worker_kills} workers SIGKILLed; master and its "
                f"workers SIGKILLed {self.master_kills}x and restarted; redis-server SIGKILLed "
                f"{self.redis_restarts}x and restarted (AOF, appendfsync always)"
            )
        rows = [
            f"chaos run: {self.seconds:.1f} s, workdir {self.workdir}",
            f"  faults                {faults}",
            f"  pushed                {self.pushed}  ({kinds})",
            f"  completed             {self.completed}",
            f"  failed as designed    {self.failed_as_designed}",
            f"  failed unexpectedly   {show(self.failed_unexpectedly)}",
            f"  lost                  {show(self.lost)}",
            f"  stuck                 {show(self.stuck)}",
            f"  still queued          {show(self.still_queued)}",
            f"  completed, no run     {show(self.completed_without_a_run)}",
            f"  run twice             {self.run_twice}  ({self.explained} explained by a worker "
            f"killed before its ack, {self.by_failover} by a failover before its outcome was "
            f"replicated, {len(self.unexplained)} unexplained"
            + (f": {', '.join(self.unexplained[:3])}" if self.unexplained else "")
            + ")",
            f"  runs recorded         {self.runs}",
            *(
                [f"  pushes unreplicated   {self.unconfirmed_pushes} (ReplicationError)"]
                if self.failovers
                else []
            ),
            f"result: {'PASS' if self.passed else 'FAIL'}",
        ]
        return "\n".join(rows)


# -- the run ---------------------------------------------------------------------------------


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f} s" for v in values) or "-"


def _config(plan: Plan, url: str) -> str:
    lines = [
        'imports = ["chaos"]',
        'log_level = "warning"',
        "[redis]",
        f"url = {json.dumps(url)}",
        *(["wait_replicas = 1", "wait_timeout = 0.5"] if plan.sentinel else []),
        "[jobs]",
        "completed_ttl = 86400",
        "[pool]",
        f"lease = {plan.lease}",
        "graceful_timeout = 10",
        "restart_backoff_max = 0.5",  # 50 kills in a few seconds are not a crash loop
    ]
    for i, queue in enumerate(plan.queues):
        lines += [f"[queues.{queue}]", f"workers = {plan.workers}"]
        if i == 0:
            lines.append(f"concurrency = {plan.concurrency}")
    return "\n".join(lines) + "\n"


@dataclass
class _Pushed:
    job_id: str
    doomed: bool


class ChaosRun:
    def __init__(self, plan: Plan, workdir: Path, out: Callable[[str], None] = print):
        self.plan = plan
        self.workdir = workdir
        self.out = out
        self.rng = random.Random(plan.seed)
        self.redis: AofRedis | SentinelRedis = (
            SentinelRedis(workdir) if plan.sentinel else AofRedis(workdir)
        )
        self.failover_times: list[tuple[float, float]] = []  # (began, new primary serving)
        self.measuring: list[threading.Thread] = []  # each failover's reconnect time
        self.config = workdir / "jobpool.toml"
        self.log_path = workdir / "master.log"
        self.killed: set[int] = set()
        self.pushed: dict[str, _Pushed] = {}  # key -> job
        self.result = Result(workdir=str(workdir))
        self.master: Master | None = None

    # -- the phases --

    def run(self) -> Result:
        started = time.monotonic()
        self.redis.start()
        self.config.write_text(_config(self.plan, self.redis.url))
        try:
            self.qm = QueueManager(self.redis.url, prefix=PREFIX)
            self._start_master()
            self._chaos()
            for thread in self.measuring:
                thread.join()
            self._wait_finished()
            assert self.master is not None
            self.master.drain(30)
            if isinstance(self.redis, SentinelRedis):
                self._count_unplanned_failovers(self.redis)
            self._account()
        finally:
            if self.master is not None and self.master.proc.poll() is None:
                self.master.kill_group()
            self.redis.kill()
        self.result.seconds = time.monotonic() - started
        return self.result

    def _count_unplanned_failovers(self, sentinels: SentinelRedis) -> None:
        """Count the failovers the sentinels made on their own, and let them explain a job
        run twice as ours do: from when the primary went quiet (down-after-milliseconds and
        an election, about two seconds before the switch) until the old one was demoted."""
        unplanned = sentinels.unplanned(self.failover_times)
        self.result.unplanned_failovers = len(unplanned)
        self.failover_times += [(named - 2.0, demoted) for named, demoted in unplanned]

    def _start_master(self) -> None:
        self.master = Master(self.config, self.log_path)
        self.master.wait_workers(self.plan.workers * len(self.plan.queues))

    def _chaos(self) -> None:
        """Push jobs and cause faults, both spread over plan.duration."""
        plan = self.plan
        batches = self._batches()
        d = plan.duration
        kill_times = sorted(self.rng.uniform(0.02 * d, 0.98 * d) for _ in range(plan.kills))
        events: list[tuple[float, Callable[[], bool]]] = [
            (t, self._kill_worker) for t in kill_times
        ]
        if plan.sentinel:
            events += [
                (0.25 * d, self._failover),
                (0.5 * d, self._kill_primary),
                (0.75 * d, self._failover),
            ]
        else:
            events += [(0.35 * d, self._kill_master), (0.6 * d, self._restart_redis)]
        events.sort(key=lambda e: e[0])
        t0, sampled = time.monotonic(), 0.0
        seen = set(self.master.workers()) if self.master is not None else set()
        while batches or events:
            now = time.monotonic() - t0
            if plan.sentinel and now - sampled > 0.2 and self.master is not None:
                seen.update(self.master.workers())  # to tell workers replaced without a kill
                sampled = now
            while batches and batches[0][0] <= now:
                _, jobs = batches.pop(0)
                self._push(jobs)
            while events and events[0][0] <= now:
                if events[0][1]():
                    events.pop(0)
                else:  # no worker to kill right now: try again in a moment
                    events[0] = (now + 0.05, events[0][1])
                    events.sort(key=lambda e: e[0])
            time.sleep(0.01)
        if plan.sentinel and self.master is not None:
            seen.update(self.master.workers())
            started = len(seen) - plan.workers * len(plan.queues)
            self.result.worker_replacements = max(started - self.result.worker_kills, 0)

    def _batches(self) -> list[tuple[float, list[tuple[ChaosJob, float]]]]:
        """(when, [(job, delay)]) every 0.1 s of the first 80% of the duration."""
        plan, rng = self.plan, self.rng
        jobs: list[tuple[ChaosJob, float]] = []
        kinds = {"immediate": 0, "delayed": 0, "flaky": 0, "doomed": 0}
        for i in range(plan.jobs):
            work = rng.uniform(0, plan.work)
            durable = plan.sentinel
            roll = rng.random()
            delay = 0.0
            if roll < plan.doomed:
                job, kind = ChaosJob(f"k{i}", work, doomed=True, durable=durable), "doomed"
                job.max_tries = 2
            elif roll < plan.doomed + plan.flaky:
                job, kind = ChaosJob(f"k{i}", work, rng.randint(1, 3), durable=durable), "flaky"
            elif roll < plan.doomed + plan.flaky + plan.delayed:
                job, kind = ChaosJob(f"k{i}", work, durable=durable), "delayed"
                delay = rng.uniform(0.5, plan.duration / 2)
            else:
                job, kind = ChaosJob(f"k{i}", work, durable=durable), "immediate"
            kinds[kind] += 1
            jobs.append((job, delay))
        self.result.kinds = kinds
        steps = max(int(plan.duration * 0.8 / 0.1), 1)
        per = -(-len(jobs) // steps)
        return [(i * 0.1, jobs[i * per : (i + 1) * per]) for i in range(steps) if jobs[i * per :]]

    def _push(self, jobs: list[tuple[ChaosJob, float]]) -> None:
        by_queue: dict[str, list[ChaosJob]] = {}
        for job, delay in jobs:
            queue = self.plan.queues[int(job.key[1:]) % len(self.plan.queues)]
            if delay:
                later = functools.partial(self.qm.later, job, delay, queue)
                job_id = self._store(lambda later=later: [later()])[0]
                self.pushed[job.key] = _Pushed(job_id, job.doomed)
            else:
                by_queue.setdefault(queue, []).append(job)
        for queue, batch in by_queue.items():
            ids = self._store(functools.partial(self.qm.push_many, batch, queue))
            for job, job_id in zip(batch, ids, strict=True):
                self.pushed[job.key] = _Pushed(job_id, job.doomed)
        self.result.pushed = len(self.pushed)

    def _store(self, push: Callable[[], list[str]]) -> list[str]:
        """Push; through Sentinel, again after a write the old primary refused (READONLY,
        which redis-py reports as a lost connection: nothing was stored). A push that too few
        replicas confirmed is kept: its jobs are on the primary, and counted as unconfirmed."""
        while True:
            try:
                return push()
            except ReplicationError as exc:
                self.result.unconfirmed_pushes += len(exc.unconfirmed)
                return [*exc.stored, *exc.unconfirmed]
            except redis.ConnectionError as exc:
                if not self.plan.sentinel or "now a slave" not in str(exc):
                    raise
                time.sleep(0.05)

    # -- the faults --

    def _kill_worker(self) -> bool:
        assert self.master is not None
        workers = self.master.workers()
        busy = [pid for pid, title in workers.items() if " busy " in title]
        pool = busy if busy and self.rng.random() < 0.8 else list(workers)
        if not pool:
            return False
        pid = self.rng.choice(pool)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            self.killed.add(pid)
            self.result.worker_kills += 1
        return pid in self.killed

    def _kill_master(self) -> bool:
        assert self.master is not None
        self.killed.update(self.master.kill_group())
        self.result.master_kills += 1
        self._start_master()
        return True

    def _restart_redis(self) -> bool:
        self.redis.kill()
        self.redis.start()
        self.result.redis_restarts += 1
        return True

    def _failover(self, kill: bool = False) -> bool:
        assert isinstance(self.redis, SentinelRedis)
        began = time.monotonic()
        wall = time.time()
        served = self.redis.fail_over(kill, began)
        self.failover_times.append((wall, wall + served))
        self.result.failovers.append("SIGKILL of the primary" if kill else "SENTINEL FAILOVER")
        self.result.failover_seconds.append(served)
        # Measured aside, while jobs are pushed on: with none left to run, none would show.
        index, what = len(self.result.reconnect_seconds), self.result.failovers[-1]
        self.result.reconnect_seconds.append(float("nan"))

        def measure() -> None:
            reconnect = self.redis.first_run_after(began)
            self.result.reconnect_seconds[index] = reconnect
            self.out(
                f"  {what}: new primary serving after {served:.2f} s, "
                f"jobs running on it again after {reconnect:.2f} s"
            )

        self.measuring.append(threading.Thread(target=measure, daemon=True))
        self.measuring[-1].start()
        return True

    def _kill_primary(self) -> bool:
        return self._failover(kill=True)

    # -- the end --

    def _records(self) -> dict[str, dict[str, Any]]:
        client = self.qm.driver.client
        records: dict[str, dict[str, Any]] = {}
        for queue in self.plan.queues:
            raw = client.hgetall(f"{PREFIX}:{{{queue}}}:state")
            records.update({k.decode(): json.loads(v) for k, v in raw.items()})
        return records

    def _wait_finished(self) -> None:
        deadline = time.monotonic() + self.plan.finish_timeout
        wanted = {p.job_id for p in self.pushed.values()}
        while time.monotonic() < deadline:
            records = _patiently(self._records)
            done = sum(
                1
                for job_id in wanted
                if records.get(job_id, {}).get("status") in ("completed", "failed")
                and not records[job_id].get("hook")
            )
            if done == len(wanted):
                return
            time.sleep(0.5)

    def _account(self) -> None:
        r, client = self.result, self.qm.driver.client
        records = self._records()
        waiting: set[str] = set()
        in_flight: set[str] = set()
        for queue in self.plan.queues:
            waiting.update(i.decode() for i in client.lrange(f"{PREFIX}:{{{queue}}}:ready", 0, -1))
            waiting.update(
                i.decode() for i in client.zrange(f"{PREFIX}:{{{queue}}}:delayed", 0, -1)
            )
            for key in client.scan_iter(f"{PREFIX}:{{{queue}}}:wip:*", count=1000):
                in_flight.update(i.decode() for i in client.lrange(key, 0, -1))
        runs = _runs(client)
        r.runs = sum(len(v) for v in runs.values())
        for key, pushed in self.pushed.items():
            record = records.get(pushed.job_id)
            status = record.get("status") if record else None
            if pushed.job_id in in_flight or status == "processing":
                r.stuck.append(pushed.job_id)
            elif status == "completed":
                r.completed += 1
                self._check_runs(key, pushed.job_id, runs.get(key, []))
            elif status == "failed" and pushed.doomed:
                r.failed_as_designed += 1
            elif status == "failed":
                r.failed_unexpectedly.append(f"{pushed.job_id} ({record.get('error')})")
            elif pushed.job_id in waiting:
                r.still_queued.append(pushed.job_id)
            else:
                r.lost.append(pushed.job_id)

    def _check_runs(self, key: str, job_id: str, runs: list[tuple[float, int, bool]]) -> None:
        ok = sorted((t, pid) for t, pid, good in runs if good)
        if not ok:
            self.result.completed_without_a_run.append(job_id)
        elif len(ok) > 1:
            self.result.run_twice += 1
            if all(pid in self.killed for _, pid in ok[:-1]):
                self.result.explained += 1
            elif all(self._near_failover(t) for t, pid in ok[:-1] if pid not in self.killed):
                self.result.by_failover += 1
            else:
                self.result.unexplained.append(job_id)

    def _near_failover(self, when: float) -> bool:
        """True when a run ended while a failover could still undo its outcome: from a
        wait_timeout plus a second before the failover began (not yet replicated) until the
        new primary served (written to the old one)."""
        return any(began - 1.5 <= when <= served + 0.5 for began, served in self.failover_times)


def _runs(client: redis.Redis) -> dict[str, list[tuple[float, int, bool]]]:
    """key -> [(time, pid, succeeded)] of every recorded run."""
    out: dict[str, list[tuple[float, int, bool]]] = {}
    for field_, value in client.hscan_iter(RUNS, count=1000):
        key = field_.decode().partition("|")[0]
        pid, outcome, when = value.decode().split("|")
        out.setdefault(key, []).append((float(when), int(pid), outcome == "ok"))
    return out


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    # Short, in /tmp: the unix socket path must fit in 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="jobpool-chaos-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def run_chaos(plan: Plan, workdir: Path | None = None) -> Result:
    """Run the plan in `workdir` (a fresh temp dir when None, removed afterwards)."""
    if workdir is not None:
        return ChaosRun(plan, workdir).run()
    with _workdir(keep=False) as tmp:
        return ChaosRun(plan, tmp).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=Plan.jobs, help="jobs to push (10000)")
    parser.add_argument("--kills", type=int, default=Plan.kills, help="worker SIGKILLs (50)")
    parser.add_argument("--workers", type=int, default=Plan.workers, help="per queue (3)")
    parser.add_argument(
        "--concurrency", type=int, default=Plan.concurrency, help="of the first queue (1)"
    )
    parser.add_argument(
        "--duration", type=float, default=Plan.duration, help="seconds of pushes and faults (30)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed, to replay a run")
    parser.add_argument("--keep", action="store_true", help="keep the workdir (logs, AOF)")
    parser.add_argument(
        "--sentinel",
        action="store_true",
        help="a Sentinel deployment, wait_replicas = 1, two failovers and a primary SIGKILL",
    )
    args = parser.parse_args(argv)
    plan = Plan(
        jobs=args.jobs,
        kills=args.kills,
        workers=args.workers,
        concurrency=args.concurrency,
        duration=args.duration,
        seed=args.seed,
        sentinel=args.sentinel,
    )
    faults = (
        "2 SENTINEL FAILOVERs and 1 SIGKILL of the primary (wait_replicas = 1)"
        if plan.sentinel
        else "1 master kill, 1 redis restart"
    )
    print(
        f"chaos: {plan.jobs} jobs on {len(plan.queues)} queues x {plan.workers} workers "
        f"(concurrency {plan.concurrency} on {plan.queues[0]}), "
        f"{plan.kills} worker kills, {faults} over {plan.duration:g} s",
        flush=True,
    )
    with _workdir(keep=args.keep) as tmp:
        result = ChaosRun(plan, tmp).run()
    print(result.report())
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
