"""Workload G (`scripts/bench --io`): I/O-bound jobs, many at once in each worker process.

Each job waits as a call to a slow service would (`time.sleep`; arq: `asyncio.sleep`), then does
one INCR: 6,000 jobs of 20 ms, and a twelfth as many of 200 ms. As in A, the jobs are pushed
first, then the workers start and the counter is polled every 2 ms: the rate runs from the first
job seen done to the last. Right when the last is done, the USS and the RSS of every process of
the worker tree (masters included) are added up. Each system runs as its `IoSetup` says
(benchmarks.targets): jobpool with `concurrency` in its config, the peers with threads, arq with
asyncio tasks; run 1 of every system and wait, then run 2, and so on.

Per system: jobs/s; its ceiling, processes x jobs at once / wait; total USS and RSS; jobs/s per
100 MB of USS. The targets (issue #14), on the 20 ms jobs, per run and then the median: jobpool's
jobs/s per 100 MB USS at least 2x the best peer's, and its jobs/s at least 0.9x its ceiling.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace

from benchmarks import report
from benchmarks.procs import Group
from benchmarks.runner import Bench
from benchmarks.targets import TARGETS, IoSetup, Target

WAITS_MS = (20, 200)
# Jobs of the 20 ms variant: about four seconds of work at the ceiling of 32 at once, so that
# what a worker pays once as it starts weighs about 1 % (the 32 first connections of the jobs'
# own Redis client cost about 50 ms of CPU in one process with redis-py 8; 2,000 jobs, 1.4 s,
# made it 3-4 %). Longer waits run a twelfth as many.
N = 6000
CAP = 20.0  # most seconds to time one run (jobpool without `concurrency` needs it)
TARGET_WAIT_MS = 20  # the variant the targets are set on
PER_MB_GOAL, CEILING_GOAL = 2.0, 0.9


def jobs(wait_ms: int, n: int = N) -> int:
    """How many jobs a run of this wait pushes: n, or n / 12 for waits over 50 ms."""
    return n if wait_ms <= 50 else max(n // 12, 1)


# -- measuring -------------------------------------------------------------------------------


def run_one(b: Bench, t: Target, setup: IoSetup, wait_ms: int, n: int, cap: float) -> dict:
    """One run of one system: push n jobs, start the workers, time them, read the memory."""
    rec: dict = {"workload": "G", "system": t.name, "wait_ms": wait_ms, "n": n}
    rec.update(processes=setup.processes, threads=setup.threads, slots=setup.slots)
    b.flush()
    out = b.produce(t, "io", n, wait_ms / 1000)
    rec["push_per_s"] = n / out["seconds"]
    start = lambda: b.start(t, setup.processes, f"G{wait_ms}", threads=setup.threads)  # noqa: E731
    rec.update(b.time_processing(start, n, cap, Group.tree_memory))
    return rec


def jobpool_refusal(b: Bench, t: Target, setup: IoSetup) -> str | None:
    """Why this checkout's `jobpool check` refuses the G config (`concurrency`), or None.

    The key is new (issue #14): a jobpool without it refuses the file, and then G runs jobpool
    with one job at a time per worker, marked so in the results, instead of not at all."""
    if setup.threads == 1:
        return None
    config = b.jobpool_config(setup.processes, setup.threads)
    argv = [t.python, "-m", "jobpool.cli", "check", "-c", str(config)]
    done = subprocess.run(argv, cwd=b.run_dir, env=b.env(root=t.root), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    if done.returncode == 0:
        return None
    message = (done.stderr or done.stdout).strip()
    if "concurrency" not in message:
        raise RuntimeError(f"jobpool check refused the workload G config:\n{message[-3000:]}")
    return message.splitlines()[-1][-300:]


def run(
    b: Bench,
    systems: list[str],
    reps: int,
    n: int = N,
    cap: float = CAP,
    waits_ms: tuple[int, ...] = WAITS_MS,
    concurrency: int | None = None,
) -> list[dict]:
    """Every run of workload G; `concurrency` overrides jobpool's jobs at once per worker."""
    setups: dict[str, IoSetup] = {}
    refused: dict[str, dict] = {}
    for name in systems:
        setup = TARGETS[name].io
        assert setup is not None, f"{name} does not run workload G"
        if name.startswith("jobpool"):  # jobpool, or a --compare checkout of it
            if concurrency is not None:
                setup = replace(setup, threads=concurrency)
            why = jobpool_refusal(b, TARGETS[name], setup)
            if why:
                b.say(f"G: {name} refuses concurrency = {setup.threads} ({why}); running it "
                      "with 1 job at a time per worker")  # fmt: skip
                refused[name] = {"concurrency_refused": setup.threads}
                setup = replace(setup, threads=1)
        setups[name] = setup
    records: list[dict] = []
    for rep in range(1, reps + 1):
        b.say(f"G run {rep} of {reps}")
        for wait_ms in waits_ms:
            for name in systems:
                rec = run_one(b, TARGETS[name], setups[name], wait_ms, jobs(wait_ms, n), cap)
                rec.update(rep=rep, **refused.get(name, {}))
                records.append(rec)
                b.say("  " + report.one_line(rec))
    return records


# -- the figures -----------------------------------------------------------------------------


def per_100mb(rec: dict) -> float | None:
    """Jobs/s per 100 MB of the worker tree's USS."""
    rate, uss = rec.get("processing_per_s"), (rec.get("memory") or {}).get("uss")
    return rate / uss * 100 if rate is not None and uss else None


def ceiling(rec: dict) -> float:
    """The most jobs/s its setup allows: processes x jobs at once / wait."""
    return rec["slots"] / (rec["wait_ms"] / 1000)


def of_ceiling(rec: dict) -> float | None:
    rate = rec.get("processing_per_s")
    return rate / ceiling(rec) if rate is not None else None


def memory(key: str) -> Callable[[dict], float | None]:
    return lambda rec: (rec.get("memory") or {}).get(key)


def select(records: list[dict], wait_ms: int) -> dict[str, dict[int, dict]]:
    """{system: {rep: record}} of the runs with this wait."""
    return report.by_key([r for r in records if r.get("wait_ms") == wait_ms], "G")


def waits(records: list[dict]) -> list[int]:
    return sorted({r["wait_ms"] for r in records if r.get("workload") == "G"})


def setup_label(runs: dict[int, dict]) -> str:
    rec = next(iter(runs.values()))
    label = f"{rec['processes']} × {rec['threads']}"
    if rec.get("concurrency_refused"):
        label += f" (concurrency = {rec['concurrency_refused']} refused)"
    return label


def table(records: list[dict], wait_ms: int) -> str:
    g = select(records, wait_ms)
    rows = []
    for name in report.order(g):
        runs = g[name]
        done, n = min(report.values(runs, "done")), max(report.values(runs, "n"))
        rows.append([
            f"**{name}**" if name == "jobpool" else name,
            setup_label(runs),
            f"{ceiling(next(iter(runs.values()))):,.0f}",
            report.fmt(report.values(runs, "processing_per_s")),
            report.fmt_ratio(report.values(runs, of_ceiling)),
            report.fmt(report.values(runs, memory("uss")), 1),
            report.fmt(report.values(runs, memory("rss")), 1),
            report.fmt(report.values(runs, per_100mb)),
            "all" if done >= n else f"{done:,} of {n:,} (capped)",
        ])  # fmt: skip
    header = ["system", "processes × jobs at once", "ceiling jobs/s", "jobs/s", "× ceiling",
              "total USS MB", "total RSS MB", "jobs/s per 100 MB USS", "jobs timed"]  # fmt: skip
    return report.table(header, rows)


def target_figures(records: list[dict]) -> list[tuple[str, list, Callable, str, str | None]]:
    """(target, per-run values, goal on the median, unit text, why pending) of the G targets."""
    g = select(records, TARGET_WAIT_MS)
    jp = g.get("jobpool", {})
    refused = next((r["concurrency_refused"] for r in jp.values() if "concurrency_refused" in r),
                   None)  # fmt: skip
    pending = (
        f"pending: this jobpool refused `concurrency = {refused}` and ran 1 job at a time"
        if refused
        else None
    )
    peer, winners = report.best_peer_ratios(g, per_100mb)
    who = ", ".join(sorted(set(winners))) or "no peer measured"
    ms = TARGET_WAIT_MS
    return [
        (f"G {ms} ms: jobs/s per 100 MB USS ≥ {PER_MB_GOAL:g}× the best peer's", peer,
         lambda v: v >= PER_MB_GOAL, f"× (vs {who})", pending),
        (f"G {ms} ms: jobs/s ≥ {CEILING_GOAL:g}× the ceiling (workers × concurrency / {ms} ms)",
         report.values(jp, of_ceiling), lambda v: v >= CEILING_GOAL, "×", pending),
    ]  # fmt: skip


def summary_lines(records: list[dict]) -> list[str]:
    """The two target ratios of every wait, for the terminal's last lines."""
    lines = []
    for wait_ms in waits(records):
        g = select(records, wait_ms)
        jp = g.get("jobpool", {})
        if not jp:
            continue
        peer, winners = report.best_peer_ratios(g, per_100mb)
        vs = f"vs {', '.join(sorted(set(winners)))}" if winners else "no peer measured"
        top = ceiling(next(iter(jp.values())))
        lines += [
            f"G {wait_ms} ms jobpool/best-peer, jobs/s per 100 MB USS: {report.fmt(peer, 2)} "
            f"({vs})",
            f"G {wait_ms} ms jobpool/ceiling: {report.fmt(report.values(jp, of_ceiling), 2)} "
            f"({setup_label(jp)}, ceiling {top:,.0f} jobs/s)",
        ]
    return lines


def tables(records: list[dict]) -> str:
    parts = [f"G, {ms} ms jobs:\n\n" + table(records, ms) for ms in waits(records)]
    return "\n\n".join(parts)


def terminal(results: dict) -> str:
    records = results["records"]
    return "\n\n".join([tables(records), "\n".join(summary_lines(records))])
