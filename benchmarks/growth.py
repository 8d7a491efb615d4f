"""Workload F: do jobpool's costs stay flat as the backlog, the payload and the pool grow?

- backlog: µs per push and per job claimed (through the worker loop) with 10^3, 10^5 and 10^6
  jobs waiting, and with 10^6 delayed jobs (10^3 ready); 100-byte payloads.
- payload: the same two costs with 100 B, 10 KB and 100 KB payloads (10^3 waiting).
- workers: processing rate of 20,000 tiny jobs with 1, 2 and 4 worker processes.
The raw floor is measured alongside wherever it applies (it has no delayed jobs).
"""

from __future__ import annotations

import json
import subprocess

from benchmarks import report, workloads
from benchmarks.runner import Bench
from benchmarks.targets import TARGETS

LEVELS = [1_000, 100_000, 1_000_000]
PAYLOADS = [100, 10_000, 100_000]
POOLS = [1, 2, 4]
OPS = 1000  # pushes and claims per measurement
LABELS = {1_000: "10^3", 100_000: "10^5", 1_000_000: "10^6", "delayed": "10^6 delayed"}


def probe(b: Bench, system: str, *args: object) -> dict:
    argv = [TARGETS["jobpool"].python, "-m", "benchmarks.growth_probe", system, *map(str, args)]
    done = subprocess.run(argv, cwd=b.run_dir, env=b.env(1), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"growth probe {system} {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(b: Bench, system: str, reps: int, size: int, **labels: object) -> list[dict]:
    out = []
    for rep in range(1, reps + 1):
        rec = {"workload": "F", "system": system, "rep": rep, **labels}
        rec.update(probe(b, system, "push", OPS, size))
        rec.update(probe(b, system, "claim", OPS))
        out.append(rec)
        b.say("  " + report.one_line(rec))
    return out


def backlog(b: Bench, reps: int) -> list[dict]:
    records: list[dict] = []
    for system in ("raw", "jobpool"):
        b.flush()
        waiting = 0
        for level in LEVELS:
            b.say(f"F {system}: filling to {level:,} waiting jobs")
            probe(b, system, "fill", level - waiting, 100)
            waiting = level
            records += measure(b, system, reps, 100, kind="backlog", level=level)
    b.flush()
    b.say("F jobpool: 10^6 delayed jobs, 10^3 ready")
    probe(b, "jobpool", "fill", LEVELS[0], 100)
    probe(b, "jobpool", "fill", LEVELS[-1], 100, 3600)
    records += measure(b, "jobpool", reps, 100, kind="backlog", level="delayed")
    b.flush()
    return records


def payload(b: Bench, reps: int) -> list[dict]:
    records: list[dict] = []
    for system in ("raw", "jobpool"):
        for size in PAYLOADS:
            b.flush()
            probe(b, system, "fill", LEVELS[0], size)
            records += measure(b, system, reps, size, kind="payload", payload=size)
    return records


def pools(b: Bench, reps: int) -> list[dict]:
    records: list[dict] = []
    for rep in range(1, reps + 1):
        for system in ("raw", "jobpool"):
            for workers in POOLS:
                rec = workloads.throughput(b, TARGETS[system], 20_000, 30.0, workers=workers)
                rec.update(workload="F", kind="workers", rep=rep)
                rec.pop("memory_after", None)
                records.append(rec)
                b.say("  " + report.one_line(rec))
    return records


def run(b: Bench, reps: int) -> list[dict]:
    return backlog(b, reps) + payload(b, reps) + pools(b, reps)


# -- summaries -------------------------------------------------------------------------------


def _select(records: list[dict], system: str, kind: str, key: str, value: object) -> dict:
    """{rep: record} for one system at one point of one axis."""
    return {
        r["rep"]: r
        for r in records
        if r["system"] == system and r.get("kind") == kind and r.get(key) == value
    }


def flatness(records: list[dict]) -> dict[str, list[float]]:
    """Per run: cost at 10^6 (ready, or delayed) over cost at 10^3, for push and claim."""
    base = _select(records, "jobpool", "backlog", "level", LEVELS[0])
    out = {}
    for level, where in ((LEVELS[-1], "waiting"), ("delayed", "delayed")):
        big = _select(records, "jobpool", "backlog", "level", level)
        for op in ("push", "claim"):
            out[f"{op} cost, 10^6 {where}"] = report.ratios(big, base, f"{op}_us")
    return out


def _cost_rows(records: list[dict], key: str, points: list, label) -> list[list[str]]:
    rows = []
    for point in points:
        row = [label(point)]
        for system in ("jobpool", "raw"):
            runs = _select(records, system, "backlog" if key == "level" else "payload", key, point)
            for op in ("push_us", "claim_us"):
                row.append(report.fmt(report.values(runs, op), 1) if runs else "–")
        rows.append(row)
    return rows


def growth_tables(records: list[dict]) -> str:
    cols = ["jobpool push µs", "jobpool claim+run µs/job", "raw push µs", "raw claim+run µs/job"]
    backlog_rows = _cost_rows(records, "level", [*LEVELS, "delayed"], LABELS.get)
    payload_rows = _cost_rows(records, "payload", PAYLOADS, lambda s: f"{s:,} B")
    flat = [[what, report.fmt_ratio(vals)] for what, vals in flatness(records).items()]
    pool_rows = []
    for workers in POOLS:
        jp = _select(records, "jobpool", "workers", "workers", workers)
        raw = _select(records, "raw", "workers", "workers", workers)
        pool_rows.append([
            str(workers), report.fmt(report.values(jp, "processing_per_s")),
            report.fmt(report.values(raw, "processing_per_s")),
            report.fmt_ratio(report.ratios(jp, raw, "processing_per_s")),
        ])  # fmt: skip
    return "\n\n".join([
        report.table(["jobs waiting", *cols], backlog_rows),
        report.table(["cost at 10^6 over cost at 10^3 (jobpool)", "ratio"], flat),
        report.table(["payload (10^3 waiting)", *cols], payload_rows),
        report.table(["worker processes", "jobpool jobs/s", "raw jobs/s", "jobpool/raw"],
                     pool_rows),
    ])  # fmt: skip
