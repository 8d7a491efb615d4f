"""The Redis Cluster run: prove that jobpool loses no job when a Cluster primary fails over under
load, and measure how long its workers take to follow the moved queues.

It builds a 3-primary Redis Cluster with a replica per primary (tests/support/cluster.py, on
loopback ports), spreads 8 queues over the primaries, starts two `jobpool start` masters with
`[redis] cluster = true` serving all 8, and pushes jobs over a few seconds. Part way through, the
primary that serves the first queue fails over to its replica: `CLUSTER FAILOVER` on the replica
(the default: the replica takes every write first, so nothing may be lost), or with `--kill` a
SIGKILL of the primary (what replication had not copied is lost to Redis; `--wait-replicas 1`
makes every push and ack wait for the replica, so an acknowledged push survives).

Each run of a job appends one line (job key, time) to a file of its worker's own, outside Redis,
so what ran is known even for writes the failover took. At the end, with both masters drained,
every pushed job is classified from its record: completed, lost (no record, or not finished),
stuck (left processing). Jobs that ran more than once are counted: a failover can make a worker
run again a job whose ack the old primary took but never replicated.

`scripts/cluster_run --help` lists the knobs; tests/processes/test_cluster_run.py runs a small one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
SUPPORT = ROOT / "tests" / "support"
sys.path[:0] = [str(SUPPORT)] if str(SUPPORT) not in sys.path else []

from cluster import Cluster  # noqa: E402 - tests/support, put on sys.path just above

from jobpool import Job, QueueManager  # noqa: E402
from jobpool.config import RedisConfig  # noqa: E402

PREFIX = "jobpool"
_EXIT_LINE = re.compile(r"worker (\S+) exited: pid (\d+), reason (\w+)")


class ClusterJob(Job, name="cluster_run.job"):
    """Records each of its runs in its worker's own file (key, time), then returns."""

    max_tries = 5

    def __init__(self, key: str, runs_dir: str, work: float = 0.0):
        self.key, self.runs_dir, self.work = key, runs_dir, work

    def handle(self) -> None:
        if self.work:
            time.sleep(self.work)
        with open(Path(self.runs_dir) / f"{os.getpid()}.runs", "a") as out:
            out.write(f"{self.key} {time.time():.6f}\n")


@dataclass(frozen=True)
class Plan:
    jobs: int = 20_000
    queues: int = 8
    masters: int = 2
    workers: int = 1  # per queue and master
    duration: float = 20.0  # seconds over which jobs are pushed
    failover_at: float = 0.4  # share of the duration after which the primary fails over
    kill: bool = False  # SIGKILL the primary instead of CLUSTER FAILOVER
    replicas: int = 1  # per primary; with --kill and --wait-replicas N, N + 1 keep writes going
    wait_replicas: int = 0
    work: float = 0.0  # seconds each job sleeps
    lease: float = 3.0
    finish_timeout: float = 180.0


@dataclass
class Result:
    pushed: int = 0
    completed: int = 0
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    completed_without_a_run: list[str] = field(default_factory=list)
    runs: int = 0
    run_twice: int = 0
    push_errors: int = 0
    repushed: int = 0  # jobs pushed again after a push failed and their record was not there
    queues: dict[str, int] = field(default_factory=dict)  # queue -> primary port at the start
    failed_over: int = 0  # the primary's port
    moved_queues: list[str] = field(default_factory=list)
    failover_seconds: float = 0.0  # from the command (or the kill) to a healthy cluster
    reconnect_seconds: float | None = None  # from the fault to the end of that longest pause
    longest_gap: float = 0.0  # longest pause between runs on the moved queues around it
    worker_exits: int = 0
    master_exits: list[int] = field(default_factory=list)
    master_errors: list[str] = field(default_factory=list)  # log tails of masters that failed
    seconds: float = 0.0
    run_seconds: float = 0.0  # from the first push to the last job finished
    workdir: str = ""
    mode: str = "failover"
    replicas: int = 1
    wait_replicas: int = 0

    @property
    def passed(self) -> bool:
        return not (self.lost or self.stuck or self.unfinished or self.completed_without_a_run)

    def report(self) -> str:
        def show(ids: list[str]) -> str:
            return f"{len(ids)}" + (f"  e.g. {', '.join(ids[:3])}" if ids else "")

        rate = self.completed / self.run_seconds if self.run_seconds else 0.0
        reconnect = "n/a" if self.reconnect_seconds is None else f"{self.reconnect_seconds:.2f} s"
        how = "SIGKILL of the primary" if self.mode == "kill" else "CLUSTER FAILOVER"
        durable = f"wait_replicas = {self.wait_replicas}" if self.wait_replicas else "no WAIT"
        rows = [
            f"cluster run: {self.seconds:.1f} s, workdir {self.workdir}",
            f"  cluster               3 primaries, {self.replicas} replica(s) each; "
            f"{len(self.queues)} queues "
            f"({', '.join(f'{q}@{p}' for q, p in self.queues.items())})",
            f"  fault                 {how} of {self.failed_over} (serving "
            f"{', '.join(self.moved_queues)}); cluster healthy again after "
            f"{self.failover_seconds:.2f} s ({durable})",
            f"  moved queues ran jobs again, after the fault  {reconnect}",
            f"  longest pause between their runs             {self.longest_gap:.2f} s",
            f"  pushed                {self.pushed}  ({self.push_errors} push calls failed "
            f"and were retried; {self.repushed} jobs pushed again, not found after a failure)",
            f"  completed             {self.completed}  ({rate:.0f} jobs/s over "
            f"{self.run_seconds:.1f} s)",
            f"  lost                  {show(self.lost)}",
            f"  stuck                 {show(self.stuck)}",
            f"  unfinished            {show(self.unfinished)}",
            f"  completed, no run     {show(self.completed_without_a_run)}",
            f"  run twice             {self.run_twice}",
            f"  runs recorded         {self.runs}",
            f"  worker exits          {self.worker_exits}; masters exited "
            f"{self.master_exits} after SIGTERM",
            f"result: {'PASS' if self.passed else 'FAIL'}",
            *(f"  a master's log ends:\n{tail}" for tail in self.master_errors),
        ]
        return "\n".join(rows)


class _Master:
    """`jobpool start` in its own process group, logging to a file."""

    def __init__(self, config: Path, log_path: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "JOBPOOL_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(SCRIPTS)]))
        self.log_path = log_path
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

    def workers(self) -> int:
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return 0
        count = 0
        for child in children:
            with contextlib.suppress(psutil.Error):
                if " ".join(child.cmdline()).startswith("jobpool: worker "):
                    count += 1
        return count

    def drain(self, timeout: float) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        family: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            family = psutil.Process(self.proc.pid).children(recursive=True)
        for proc in family:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def exits(self) -> int:
        return len(_EXIT_LINE.findall(self.log_path.read_text(errors="replace")))


def _config(plan: Plan, port: int, queues: list[str]) -> str:
    lines = [
        'imports = ["cluster_run"]',
        'log_level = "warning"',
        "[redis]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "cluster = true",
    ]
    if plan.wait_replicas:
        lines.append(f"wait_replicas = {plan.wait_replicas}")
    lines += ["[jobs]", "completed_ttl = 86400", "[pool]", f"lease = {plan.lease}"]
    lines += ["graceful_timeout = 10"]
    for queue in queues:
        lines += [f"[queues.{queue}]", f"workers = {plan.workers}"]
    return "\n".join(lines) + "\n"


class ClusterRun:
    def __init__(self, plan: Plan, workdir: Path, out: Callable[[str], None] = print):
        self.plan, self.workdir, self.out = plan, workdir, out
        self.cluster = Cluster(workdir / "cluster", replicas=plan.replicas)
        self.runs_dir = workdir / "runs"
        self.masters: list[_Master] = []
        self.pushed: dict[str, str] = {}  # key -> job id
        self.result = Result(
            workdir=str(workdir),
            mode="kill" if plan.kill else "failover",
            replicas=plan.replicas,
            wait_replicas=plan.wait_replicas,
        )

    def run(self) -> Result:
        started = time.monotonic()
        (self.workdir / "cluster").mkdir(parents=True, exist_ok=True)
        self.runs_dir.mkdir(exist_ok=True)
        self.cluster.start()
        try:
            self.queues = self.cluster.spread_queues(self.plan.queues, PREFIX)
            self.result.queues = {q: self.cluster.primary_of(_ready(q)) for q in self.queues}
            port = self.cluster.ports[0]
            cfg = RedisConfig(
                host="127.0.0.1", port=port, cluster=True, wait_replicas=self.plan.wait_replicas
            )
            self.qm = QueueManager(cfg, prefix=PREFIX)
            config = self.workdir / "jobpool.toml"
            config.write_text(_config(self.plan, port, self.queues))
            for i in range(self.plan.masters):
                self.masters.append(_Master(config, self.workdir / f"master-{i}.log"))
            self._wait_workers()
            t0 = time.time()
            self._push_and_fail_over()
            self._wait_finished()
            self.result.run_seconds = self._last_run() - t0
            self.result.master_exits = [m.drain(30) for m in self.masters]
            self.result.master_errors = [
                m.log_path.read_text(errors="replace")[-3000:]
                for m, code in zip(self.masters, self.result.master_exits, strict=True)
                if code != 0
            ]
            self.result.worker_exits = sum(m.exits() for m in self.masters)
            self._account()
            if not self.result.passed:
                self._diagnose()
            self.qm.close()
        finally:
            for m in self.masters:
                if m.proc.poll() is None:
                    m.kill()
            self.cluster.stop()
        self.result.seconds = time.monotonic() - started
        return self.result

    def _wait_workers(self) -> None:
        wanted = self.plan.queues * self.plan.workers
        deadline = time.monotonic() + 60
        while not all(m.workers() >= wanted for m in self.masters):
            for m in self.masters:
                if m.proc.poll() is not None:
                    raise RuntimeError(f"jobpool start exited; see {m.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not come up")
            time.sleep(0.05)

    def _push_and_fail_over(self) -> None:
        plan = self.plan
        steps = max(int(plan.duration / 0.1), 1)
        per = -(-plan.jobs // steps)
        fault_step = int(steps * plan.failover_at)
        t0 = time.monotonic()
        n = 0
        for step in range(steps):
            if step == fault_step:
                self._fault()
            batch = [f"k{i}" for i in range(n, min(n + per, plan.jobs))]
            n += len(batch)
            by_queue: dict[str, list[str]] = {}
            for key in batch:
                by_queue.setdefault(self.queues[int(key[1:]) % len(self.queues)], []).append(key)
            for queue, keys in by_queue.items():
                self._push(queue, keys)
            pause = t0 + (step + 1) * 0.1 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self.result.pushed = len(self.pushed)

    def _push(self, queue: str, keys: list[str]) -> None:
        """push_many, tried again while the slot moves. A push that failed names what it
        stored (`stored`) and what it may have stored (`unconfirmed`: sent, or stored without
        the replicas' WAIT): those are looked up, as an application that must not lose a job
        does, and only what is not there is pushed again (re-pushes are counted)."""
        deadline = time.monotonic() + 30
        while keys:
            jobs = [ClusterJob(key, str(self.runs_dir), self.plan.work) for key in keys]
            try:
                ids = self.qm.push_many(jobs, queue)
            except Exception as exc:  # noqa: BLE001 - reported and tried again
                self.result.push_errors += 1
                if time.monotonic() > deadline:
                    raise
                self.out(f"  push to {queue} failed ({type(exc).__name__}: {exc}); retrying")
                time.sleep(0.2)
                keys = self._unstored(keys, exc)
                continue
            for key, job_id in zip(keys, ids, strict=True):
                self.pushed[key] = job_id
            return

    def _unstored(self, keys: list[str], exc: Exception) -> list[str]:
        """The keys of a failed push_many not stored: ids in order of the jobs, the stored
        ones first, then the unconfirmed ones, which count if Redis has their record now."""
        stored = list(getattr(exc, "stored", []))
        unconfirmed = list(getattr(exc, "unconfirmed", []))
        for key, job_id in zip(keys, stored + unconfirmed, strict=False):
            if job_id in stored or self._exists(job_id):
                self.pushed[key] = job_id
        left = [key for key in keys if key not in self.pushed]
        self.result.repushed += len(left) if (stored or unconfirmed) else 0
        return left

    def _exists(self, job_id: str) -> bool:
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.qm.get_job_status(job_id) is not None
            except Exception:  # noqa: BLE001 - the failover may still be under way
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _fault(self) -> None:
        first = self.queues[0]
        primary = self.cluster.primary_of(_ready(first))
        self.result.failed_over = primary
        self.result.moved_queues = [q for q, p in self.result.queues.items() if p == primary]
        self.fault_at = time.time()
        began = time.monotonic()
        if self.plan.kill:
            self.cluster.kill(primary)
            self.cluster.wait_replaced(primary, 60)
        else:
            self.cluster.failover(primary, 60)
        self.result.failover_seconds = time.monotonic() - began
        self.out(
            f"  {self.result.mode} of {primary}: healthy after {self.result.failover_seconds:.2f} s"
        )

    def _statuses(self) -> dict[str, str | None]:
        """key -> status of every pushed job."""
        by_queue: dict[str, list[str]] = {}
        for key, job_id in self.pushed.items():
            by_queue.setdefault(job_id.split(":", 1)[0], []).append(key)
        out: dict[str, str | None] = {}
        client = self.qm.driver.client  # type: ignore[attr-defined]
        for queue, keys in by_queue.items():
            state = f"{PREFIX}:{{{queue}}}:state"
            for i in range(0, len(keys), 1000):
                chunk = keys[i : i + 1000]
                raws = client.hmget(state, [self.pushed[k] for k in chunk])
                for key, raw in zip(chunk, raws, strict=True):
                    out[key] = None if raw is None else json.loads(raw).get("status")
        return out

    def _wait_finished(self) -> None:
        deadline = time.monotonic() + self.plan.finish_timeout
        while time.monotonic() < deadline:
            try:
                statuses = self._statuses()
            except Exception:  # noqa: BLE001 - a moment of failover: look again
                time.sleep(0.5)
                continue
            if all(s == "completed" for s in statuses.values()):
                return
            time.sleep(0.5)

    def _diagnose(self) -> None:
        """Write diagnosis.json in the work directory: for each job that did not complete,
        its record and the keys of its queue that hold its id, read before the cluster stops."""
        client = self.qm.driver.client  # type: ignore[attr-defined]
        r = self.result
        bad = r.lost + r.stuck + [u.split("=")[0] for u in r.unfinished]
        out = {}
        for key in bad:
            job_id = self.pushed[key]
            queue = job_id.split(":", 1)[0]
            k = f"{PREFIX}:{{{queue}}}"
            where = [
                name
                for name in (f"{k}:ready", *(x.decode() for x in client.keys(f"{k}:wip:*")))
                if job_id.encode() in client.lrange(name, 0, -1)
            ]
            raw = client.hget(f"{k}:state", job_id)
            out[key] = {"id": job_id, "record": raw and raw.decode(), "in": where}
        (self.workdir / "diagnosis.json").write_text(json.dumps(out, indent=1))

    def _runs(self) -> list[tuple[str, float]]:
        runs = []
        for path in self.runs_dir.glob("*.runs"):
            for line in path.read_text().splitlines():
                key, at = line.split()
                runs.append((key, float(at)))
        return runs

    def _last_run(self) -> float:
        return max((at for _, at in self._runs()), default=time.time())

    def _account(self) -> None:
        r = self.result
        runs = self._runs()
        r.runs = len(runs)
        counts = Counter(key for key, _ in runs)
        r.run_twice = sum(1 for n in counts.values() if n > 1)
        for key, status in sorted(self._statuses().items()):
            if status == "completed":
                r.completed += 1
                if not counts[key]:
                    r.completed_without_a_run.append(key)
            elif status is None:
                r.lost.append(key)
            elif status == "processing":
                r.stuck.append(key)
            else:
                r.unfinished.append(f"{key}={status}")
        moved = {k for k, job_id in self.pushed.items() if job_id.split(":")[0] in r.moved_queues}
        times = sorted(at for key, at in runs if key in moved)
        # The moved queues pause around the fault; when the longest pause ends, their workers
        # run jobs again on the new primary.
        window = [at for at in times if at >= self.fault_at - 1]
        gaps = [(b - a, b) for a, b in zip(window, window[1:], strict=False)]
        r.longest_gap, resumed = max(gaps, default=(0.0, None))
        r.reconnect_seconds = None if resumed is None else max(resumed - self.fault_at, 0.0)


def _ready(queue: str) -> str:
    return f"{PREFIX}:{{{queue}}}:ready"


def run_cluster(plan: Plan, workdir: Path, out: Callable[[str], None] = print) -> Result:
    return ClusterRun(plan, workdir, out).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=Plan.jobs)
    parser.add_argument("--duration", type=float, default=Plan.duration)
    parser.add_argument("--workers", type=int, default=Plan.workers, help="per queue and master")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the primary")
    parser.add_argument("--wait-replicas", type=int, default=0)
    parser.add_argument("--replicas", type=int, default=1, help="per primary")
    parser.add_argument("--finish-timeout", type=float, default=Plan.finish_timeout)
    parser.add_argument("--work", type=float, default=0.0, help="seconds each job sleeps")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    plan = Plan(
        jobs=args.jobs,
        duration=args.duration,
        workers=args.workers,
        kill=args.kill,
        wait_replicas=args.wait_replicas,
        replicas=args.replicas,
        work=args.work,
        finish_timeout=args.finish_timeout,
    )
    workdir = Path(tempfile.mkdtemp(prefix="jobpool-cluster-"))
    result = run_cluster(plan, workdir)
    print(result.report())
    if not args.keep and result.passed:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
