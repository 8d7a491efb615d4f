"""`scripts/bench --profile`: where the time of workload A goes, per process and per command.

For each system (jobpool, raw and Huey by default): push N tiny jobs, start 2 workers, and over
the processing window read every process's CPU time (workers, master, redis-server) and Redis's
own per-command statistics (INFO commandstats, reset at the window's start). With py-spy on PATH
(or $PYSPY), jobpool's processes are also sampled (`py-spy record -f raw --nonblocking`) and
the functions holding the most samples are listed, inclusive and self.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil

from benchmarks import report
from benchmarks.procs import Group, pool_children
from benchmarks.runner import Bench
from benchmarks.targets import TARGETS


def _cpu(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, proc in procs.items():
        try:
            t = proc.cpu_times()
            out[name] = t.user + t.system
        except psutil.NoSuchProcess:
            out[name] = 0.0
    return out


def _roles(group: Group, redis_pid: int) -> dict[str, psutil.Process]:
    procs = {"redis-server": psutil.Process(redis_pid)}
    for i, top in enumerate(psutil.Process(p.pid) for p in group.procs):
        if group.layout == "pool":
            procs["master"] = top
            workers, helpers = pool_children(top)
            for j, child in enumerate(workers):
                procs[f"worker {j}"] = child
            for child in helpers:
                procs["fork server"] = child
        else:
            procs[f"worker {i}"] = top
    return procs


def _commandstats(b: Bench) -> dict[str, dict]:
    stats = b.r.info("commandstats")
    return {k.removeprefix("cmdstat_"): v for k, v in stats.items()}


def _pyspy() -> str | None:
    return os.environ.get("PYSPY") or shutil.which("py-spy")


def _sample(procs: dict[str, psutil.Process], seconds: float, out: Path) -> list:
    exe = _pyspy()
    if exe is None:
        return []
    started = []
    for name, proc in procs.items():
        if name == "redis-server":
            continue
        path = out / f"pyspy-{name.replace(' ', '')}.txt"
        argv = [exe, "record", "-p", str(proc.pid), "-d", f"{seconds:.0f}", "-r", "200"]
        argv += ["-f", "raw", "--nonblocking", "-o", str(path)]
        started.append((name, path, subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL)))  # fmt: skip
    return started


def profile_one(b: Bench, name: str, n: int, redis_pid: int, spy: bool) -> dict:
    t = TARGETS[name]
    b.flush()
    b.produce(t, "bulk" if t.bulk else "single", n)
    group = b.start(t, 2, "profile")
    try:
        while b.counter() == 0:
            time.sleep(0.001)
        procs = _roles(group, redis_pid)
        b.r.config_resetstat()
        first, before, started = b.counter(), _cpu(procs), time.monotonic()
        samplers = _sample(procs, max(n / 8000, 3), b.run_dir) if spy else []
        b.wait_counter(n, timeout=120)
        jobs, after, wall = b.counter() - first, _cpu(procs), time.monotonic() - started
        stats = _commandstats(b)
        for _, _, proc in samplers:
            proc.wait(60)
    finally:
        group.stop()
    return {
        "system": name,
        "jobs": jobs,
        "rate": jobs / wall,
        "cpu_us_per_job": {k: (after[k] - before[k]) / jobs * 1e6 for k in procs},
        "commands": stats,
        "pyspy": {who: str(path) for who, path, _ in samplers},
    }


def summarise_pyspy(path: Path, top: int = 18) -> str:
    """Inclusive and self sample shares of the busiest functions of one py-spy raw file."""
    inclusive, own, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  for f in stack.split(";")]  # fmt: skip
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return "(no samples)"
    rows = [
        [f"`{frame}`", f"{inclusive[frame] / total:.0%}", f"{own[frame] / total:.0%}"]
        for frame, _ in inclusive.most_common(top)
    ]
    return report.table(["function (file)", "inclusive", "self"], rows)


def render(results: list[dict]) -> str:
    parts = []
    for res in results:
        cpu = res["cpu_us_per_job"]
        rows = [[who, f"{us:,.1f}"] for who, us in cpu.items()]
        rows.append(["**total**", f"{sum(cpu.values()):,.1f}"])
        parts.append(f"#### {res['system']}: {res['rate']:,.0f} jobs/s over {res['jobs']:,} jobs\n")
        parts.append(report.table(["process", "CPU µs per job"], rows))
        cmds = sorted(res["commands"].items(), key=lambda kv: -kv[1]["usec"])
        crow = [[c, f"{v['calls'] / res['jobs']:.2f}", f"{v['usec'] / res['jobs']:.1f}",
                 f"{v['usec_per_call']:.1f}"] for c, v in cmds[:8]]  # fmt: skip
        parts.append("\nRedis, per job processed:\n")
        parts.append(report.table(["command", "calls", "server µs", "µs per call"], crow))
        for who, path in res["pyspy"].items():
            parts.append(f"\npy-spy, {res['system']} {who}:\n")
            parts.append(summarise_pyspy(Path(path)))
        parts.append("")
    return "\n".join(parts)


def run(b: Bench, redis_pid: int, systems: list[str], n: int) -> str:
    results = []
    for name in systems:
        b.say(f"profiling {name}")
        results.append(profile_one(b, name, n, redis_pid, spy=name == "jobpool"))
    return render(results)
