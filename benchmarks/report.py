"""Tables (terminal and docs/benchmarks.md), the targets verdict and the charts."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from benchmarks.stats import spread
from benchmarks.targets import PEER_NAMES, TARGETS

Records = list[dict]


# -- picking figures out of the records ------------------------------------------------------


def by_key(records: Records, workload: str) -> dict[str, dict[int, dict]]:
    """{system: {rep: record}} of one workload."""
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for rec in records:
        if rec["workload"] == workload:
            out[rec["system"]][rec["rep"]] = rec
    return out


def values(runs: dict[int, dict], field: str | Callable[[dict], float | None]) -> list:
    get = field if callable(field) else (lambda r: r.get(field))
    return [get(r) for r in runs.values()]


def ratios(runs: dict[int, dict], base: dict[int, dict], field: str) -> list[float]:
    """Per run: this system's figure over the base's figure of the same run."""
    out = []
    for rep, rec in runs.items():
        mine, theirs = rec.get(field), base.get(rep, {}).get(field)
        if mine is not None and theirs:
            out.append(mine / theirs)
    return out


def best_peer_ratios(
    a: dict[str, dict[int, dict]], field: str | Callable[[dict], float | None]
) -> tuple[list[float], list]:
    """Per run: jobpool's figure over the best peer's of that run, and which peer that was."""
    get = field if callable(field) else (lambda r: r.get(field))
    out, winners = [], []
    for rep, rec in a.get("jobpool", {}).items():
        peers = [(get(a[p][rep]) or 0, p) for p in PEER_NAMES if rep in a.get(p, {})]
        mine = get(rec)
        if peers and mine is not None:
            best, name = max(peers)
            if best:
                out.append(mine / best)
                winners.append(name)
    return out, winners


def fn_ratios(a: dict[str, dict[int, dict]], field: str) -> list[float]:
    """Per run: the `@job` function's figure (jobpool-fn) over the Job class's (jobpool)."""
    return ratios(a.get("jobpool-fn", {}), a.get("jobpool", {}), field)


def worst(mem_field: str, key: str) -> Callable[[dict], float | None]:
    """The largest value of one memory figure among a run's processes."""

    def get(rec: dict) -> float | None:
        vals = rec.get(mem_field, {}).get(key) or []
        return max(vals) if vals else None

    return get


# -- formatting ------------------------------------------------------------------------------


def fmt(vals: Iterable[float | None], digits: int = 0, unit: str = "") -> str:
    s = spread(list(vals))
    if s is None:
        return "–"
    med, lo, hi = (f"{v:,.{digits}f}" for v in s)
    return f"{med}{unit} ({lo}–{hi})" if lo != hi else f"{med}{unit}"


def fmt_ratio(vals: list[float]) -> str:
    return fmt(vals, 2, "×")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def order(systems: Iterable[str]) -> list[str]:
    known = list(TARGETS)
    return sorted(systems, key=lambda s: known.index(s) if s in known else len(known))


# -- the tables ------------------------------------------------------------------------------


def throughput_table(records: Records) -> str:
    a = by_key(records, "A")
    raw = a.get("raw", {})
    rows = []
    for name in order(a):
        runs = a[name]
        done = min(values(runs, "done"))
        n = max(values(runs, "n"))
        bulk = TARGETS[name].bulk if name in TARGETS else None
        rows.append([
            f"**{name}**" if name == "jobpool" else name,
            fmt(values(runs, "processing_per_s")),
            fmt_ratio(ratios(runs, raw, "processing_per_s")),
            fmt(values(runs, "push_per_s")),
            fmt_ratio(ratios(runs, raw, "push_per_s")),
            fmt(values(runs, "push_many_per_s")) if bulk else "no bulk API",
            fmt_ratio(ratios(runs, raw, "push_many_per_s")) if bulk else "–",
            fmt(values(runs, "boot_s"), 2),
            "all" if done >= n else f"{done:,} of {n:,} (capped)",
        ])  # fmt: skip
    header = ["system", "processing jobs/s", "× raw", "push one by one /s", "× raw",
              "bulk push /s", "× raw", "boot s", "jobs timed"]  # fmt: skip
    return table(header, rows)


def latency_table(records: Records) -> str:
    b, c = by_key(records, "B"), by_key(records, "C")
    rows = []
    for name in order(set(b) | set(c)):
        pick, late = b.get(name, {}), c.get(name, {})
        early = sum(values(late, "early")) if late else None
        total = sum(values(late, "count")) if late else 0
        rows.append([
            f"**{name}**" if name == "jobpool" else name,
            fmt(values(pick, "p50_ms"), 2), fmt(values(pick, "p99_ms"), 2),
            fmt(values(pick, "max_ms"), 1),
            fmt(values(late, "p50_ms"), 1) if late else "no delayed jobs",
            fmt(values(late, "p99_ms"), 1) if late else "–",
            fmt(values(late, "max_ms"), 1) if late else "–",
            f"{early} of {total}" + (f" (down to {min(values(late, 'min_ms')):,.0f} ms)"
                                     if early else "") if late else "–",
        ])  # fmt: skip
    header = ["system", "pickup p50 ms", "pickup p99 ms", "pickup max ms",
              "delayed late p50 ms", "p99 ms", "max ms", "ran early"]  # fmt: skip
    return table(header, rows)


def memory_table(records: Records) -> str:
    a, b = by_key(records, "A"), by_key(records, "B")
    rows = []
    for name in order(set(a) | set(b)):
        pool = name in TARGETS and TARGETS[name].layout == "pool"
        rows.append([
            f"**{name}**" if name == "jobpool" else name,
            fmt(values(b.get(name, {}), worst("memory_idle", "worker_uss")), 1),
            fmt(values(b.get(name, {}), worst("memory_idle", "worker_rss")), 1),
            fmt(values(a.get(name, {}), worst("memory_after", "worker_uss")), 1),
            fmt(values(a.get(name, {}), worst("memory_after", "worker_rss")), 1),
            fmt(values(b.get(name, {}), worst("memory_idle", "master_rss")), 1) if pool else "–",
            fmt(values(a.get(name, {}), worst("memory_after", "master_rss")), 1) if pool else "–",
        ])  # fmt: skip
    header = ["system", "worker USS idle", "worker RSS idle", "worker USS after A",
              "worker RSS after A", "master RSS idle", "master RSS after A"]  # fmt: skip
    return table(header, rows)


def redis_benchmark_table(records: Records) -> str | None:
    runs = by_key(records, "E").get("redis-benchmark")
    if not runs:
        return None
    rows = [
        [cmd.upper(), str(p), fmt(values(runs, f"{cmd}_P{p}_per_s"))]
        for p in (1, 16)
        for cmd in ("lpush", "rpop")
    ]
    return table(["command", "pipeline", "requests/s"], rows)


# -- targets ---------------------------------------------------------------------------------


def verdicts(
    main: Records, growth: Records | None, io: Records | None = None
) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target that the results cover; `io`: workload G's."""
    a, b, c = by_key(main, "A"), by_key(main, "B"), by_key(main, "C")
    jp = a.get("jobpool", {})
    out: list[tuple[str, str, bool | None]] = []

    def check(name: str, vals: list, goal: Callable[[float], bool], text: str, dp=2) -> None:
        """text: "UNIT" or "UNIT (note)"; the figure goes before it."""
        s = spread(vals)
        unit, _, note = text.partition(" (")
        shown = fmt(vals, dp, unit) + (f", {note[:-1]}" if note else "") if s else "not measured"
        out.append((name, shown, None if s is None else goal(s[0])))

    peer, winners = best_peer_ratios(a, "processing_per_s")
    who = ", ".join(sorted(set(winners))) or "no peer measured"
    check("processing ≥ 3× the fastest peer", peer, lambda v: v >= 3, f"× (vs {who})")
    check(
        "processing ≥ 1.5× the raw floor",
        ratios(jp, a.get("raw", {}), "processing_per_s"),
        lambda v: v >= 1.5,
        "×",
    )
    if "jobpool-fn" in a:
        check(
            "@job function processing ≥ 0.95× a Job class's",
            fn_ratios(a, "processing_per_s"),
            lambda v: v >= 0.95,
            "×",
        )
    check("pickup p99 ≤ 2 ms", values(b.get("jobpool", {}), "p99_ms"), lambda v: v <= 2, " ms")
    check(
        "delayed lateness p99 ≤ 10 ms",
        values(c.get("jobpool", {}), "p99_ms"),
        lambda v: v <= 10,
        " ms",
    )
    early = values(c.get("jobpool", {}), "early")
    check("delayed jobs never early", early, lambda v: max(early) == 0, " early per run", 0)
    check(
        "push one by one ≥ 0.8× raw RPUSH loop",
        ratios(jp, a.get("raw", {}), "push_per_s"),
        lambda v: v >= 0.8,
        "×",
    )
    check(
        "push_many ≥ 50,000 jobs/s",
        values(jp, "push_many_per_s"),
        lambda v: v >= 50_000,
        " jobs/s",
        0,
    )
    check(
        "idle worker USS ≤ 15 MB",
        values(b.get("jobpool", {}), worst("memory_idle", "worker_uss")),
        lambda v: v <= 15,
        " MB",
        1,
    )
    master = [
        max(x for x in pair if x is not None)
        for pair in zip(
            values(b.get("jobpool", {}), worst("memory_idle", "master_rss")),
            values(jp, worst("memory_after", "master_rss")),
            strict=False,
        )
        if any(pair)
    ]
    check("master RSS ≤ 40 MB", master, lambda v: v <= 40, " MB", 1)
    if growth:
        from benchmarks.growth import flatness

        for what, vals in flatness(growth).items():
            check(f"{what}: within 1.5× of 10^3 waiting", vals, lambda v: v <= 1.5, "×")
    if io:
        from benchmarks.iobound import target_figures

        for name, vals, goal, text, pending in target_figures(io):
            check(name, vals, goal, text)
            if pending:  # measured, but not on the setup the target is about
                out[-1] = (name, f"{out[-1][1]}; {pending}", None)
    return out


def verdict_table(main: Records, growth: Records | None, io: Records | None = None) -> str:
    mark = {True: "met", False: "**missed**", None: "not measured"}
    rows = [[name, measured, mark[met]] for name, measured, met in verdicts(main, growth, io)]
    return table(["target", "jobpool measured (median (min–max))", "verdict"], rows)


# -- outputs ---------------------------------------------------------------------------------


def one_line(rec: dict) -> str:
    """Progress line for one record."""
    keys = ("processing_per_s", "push_per_s", "push_many_per_s", "p50_ms", "p99_ms", "early",
            "push_us", "claim_us", "lpush_P1_per_s")  # fmt: skip
    parts = [f"{k}={rec[k]:,.2f}" for k in keys if isinstance(rec.get(k), (int, float))]
    label = rec.get("kind", "") + str(rec.get("level", rec.get("payload", rec.get("workers", ""))))
    if rec["workload"] == "G":
        label = f"{rec['wait_ms']} ms, {rec['processes']}x{rec['threads']}"
        mem = rec.get("memory") or {}
        parts += [f"{k}_mb={mem[k]:,.1f}" for k in ("uss", "rss") if k in mem]
    return f"{rec['workload']} {rec['system']} {label} " + " ".join(parts)


def quick(results: dict) -> str:
    """The throughput table, then the ratios a regression shows in, on the last lines."""
    records = results["records"]
    a = by_key(records, "A")
    jp, raw = a.get("jobpool", {}), a.get("raw", {})
    lines = [throughput_table(records), ""]
    for name in [n for n in a if n.startswith("jobpool@")]:
        vs, vs_push = ratios(a[name], jp, "processing_per_s"), ratios(a[name], jp, "push_per_s")
        lines.append(f"{name}/jobpool: {fmt(vs, 2)} (processing; push {fmt(vs_push, 2)})")
    if "jobpool-fn" in a:
        fn, fn_push = fn_ratios(a, "processing_per_s"), fn_ratios(a, "push_per_s")
        lines.append(f"jobpool-fn/jobpool: {fmt(fn, 2)} (processing, @job function over Job "
                     f"class; push one by one {fmt(fn_push, 2)})")  # fmt: skip
    to_raw, push = ratios(jp, raw, "processing_per_s"), ratios(jp, raw, "push_per_s")
    lines.append(f"jobpool/raw: {fmt(to_raw, 2)} (processing; push one by one {fmt(push, 2)})")
    peer, winners = best_peer_ratios(a, "processing_per_s")
    if peer:
        lines.append(f"jobpool/best-peer: {fmt(peer, 2)} (processing, vs {winners[0]})")
    else:
        lines.append("jobpool/best-peer: n/a (no peer venv; `scripts/bench` creates .venv-bench)")
    return "\n".join(lines)


def terminal(results: dict, growth: bool = False, io: bool = False) -> str:
    if growth:
        from benchmarks.growth import growth_tables

        return growth_tables(results["records"])
    if io:
        from benchmarks import iobound

        return iobound.terminal(results)
    records = results["records"]
    parts = [throughput_table(records), latency_table(records), memory_table(records)]
    rb = redis_benchmark_table(records)
    if rb:
        parts.append(rb)
    parts.append(verdict_table(records, None))
    return "\n\n".join(parts)


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def write_docs(docs: Path) -> None:
    from benchmarks import docs as docs_page

    main, growth = load(docs / "benchmarks.json"), load(docs / "benchmarks-growth.json")
    io = load(docs / "benchmarks-io.json")
    if main is None:
        return
    charts = []
    try:
        from benchmarks import charts as charting

        charts = charting.draw(main, growth, docs)
    except ImportError:  # matplotlib lives in .venv-bench only
        pass
    (docs / "benchmarks.md").write_text(docs_page.render(main, growth, charts, io))
