"""The benchmark's arithmetic: ratios against the floor of the same run, medians with their
spread, the verdict on each target, and the last lines of `scripts/bench --quick`."""

from __future__ import annotations

from benchmarks import report
from benchmarks.stats import percentile, spread


def _a(system, rep, processing, push, push_many=None):
    return {
        "workload": "A",
        "system": system,
        "rep": rep,
        "processing_per_s": processing,
        "push_per_s": push,
        "push_many_per_s": push_many,
        "n": 100,
        "done": 100,
    }


RECORDS = [
    # run 1: a fast machine; run 2: a slow one. Ratios must pair each run with its own floor.
    _a("raw", 1, 10_000, 10_000),
    _a("jobpool", 1, 20_000, 9_000, 120_000),
    _a("huey", 1, 5_000, 9_500),
    _a("raw", 2, 5_000, 5_000),
    _a("jobpool", 2, 7_000, 3_000, 60_000),
    _a("huey", 2, 2_000, 4_000),
]


def test_ratios_divide_by_the_floor_of_the_same_run():
    a = report.by_key(RECORDS, "A")
    assert report.ratios(a["jobpool"], a["raw"], "processing_per_s") == [2.0, 1.4]
    peer, winners = report.best_peer_ratios(a, "processing_per_s")
    assert peer == [4.0, 3.5] and winners == ["huey", "huey"]


def test_spread_is_median_min_max_of_the_figures_present():
    assert spread([3.0, None, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert spread([None]) is None
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.99) == 4.96


def test_verdicts_compare_the_median_with_each_target():
    verdict = {name: met for name, _, met in report.verdicts(RECORDS, None)}
    assert verdict["processing ≥ 3× the fastest peer"] is True  # median 3.75
    assert verdict["processing ≥ 1.5× the raw floor"] is True  # median 1.7
    assert verdict["push one by one ≥ 0.8× raw RPUSH loop"] is False  # median 0.75 of 0.9 and 0.6
    assert verdict["push_many ≥ 50,000 jobs/s"] is True
    assert verdict["pickup p99 ≤ 2 ms"] is None  # workload B was not run


def test_quick_ends_with_the_ratios_to_raw_and_to_the_best_peer():
    last = report.quick({"records": RECORDS}).splitlines()[-2:]
    assert last[0].startswith("jobpool/raw: 1.70 (1.40–2.00)")
    assert last[1] == "jobpool/best-peer: 3.75 (3.50–4.00) (processing, vs huey)"


# -- workload A: the @job function against the Job class --------------------------------------

FN_RECORDS = [
    *RECORDS,
    _a("jobpool-fn", 1, 19_000, 9_900, 108_000),  # run 1: 0.95 of the class, push 1.1
    _a("jobpool-fn", 2, 7_700, 2_700, 66_000),  # run 2: 1.1 of the class, push 0.9
]


def test_function_ratios_divide_by_the_class_of_the_same_run():
    a = report.by_key(FN_RECORDS, "A")
    assert report.fn_ratios(a, "processing_per_s") == [0.95, 1.1]
    assert report.fn_ratios(a, "push_per_s") == [1.1, 0.9]
    assert report.fn_ratios({"jobpool": a["jobpool"]}, "processing_per_s") == []


def test_the_function_variant_is_no_peer():
    a = report.by_key([dict(r) for r in FN_RECORDS], "A")
    a["jobpool-fn"][1]["processing_per_s"] = 1e9  # faster than all: still not "the best peer"
    peer, winners = report.best_peer_ratios(a, "processing_per_s")
    assert winners == ["huey", "huey"] and peer == [4.0, 3.5]


def test_function_verdict_and_quick_line():
    verdict = {name: met for name, _, met in report.verdicts(FN_RECORDS, None)}
    assert verdict["@job function processing ≥ 0.95× a Job class's"] is True  # median 1.025
    assert "@job function processing ≥ 0.95× a Job class's" not in {
        name for name, _, _ in report.verdicts(RECORDS, None)
    }
    lines = report.quick({"records": FN_RECORDS}).splitlines()
    assert lines[-3] == (
        "jobpool-fn/jobpool: 1.02 (0.95–1.10) (processing, @job function over Job class; "
        "push one by one 1.00 (0.90–1.10))"
    )
    assert lines[-2].startswith("jobpool/raw: ")


# -- workload G: I/O-bound jobs ----------------------------------------------------------------


def _g(system, rep, rate, uss, processes=2, threads=16, wait_ms=20, **extra):
    return {
        "workload": "G",
        "system": system,
        "rep": rep,
        "wait_ms": wait_ms,
        "n": 2000,
        "done": 2000,
        "processes": processes,
        "threads": threads,
        "slots": processes * threads,
        "processing_per_s": rate,
        "memory": {"uss": uss, "rss": uss * 2, "procs": processes + 1},
        **extra,
    }


G_RECORDS = [
    # run 1: jobpool 1,500/s on 25 MB = 6,000 per 100 MB; dramatiq 2,500; huey 2,000
    _g("jobpool", 1, 1_500, 25),
    _g("dramatiq", 1, 1_250, 50),
    _g("huey", 1, 600, 30, processes=1),
    # run 2 (a slower machine): jobpool 4,000 per 100 MB; huey 2,500, now the best peer
    _g("jobpool", 2, 1_000, 25),
    _g("dramatiq", 2, 1_000, 50),
    _g("huey", 2, 750, 30, processes=1),
    # the 200 ms variant is reported apart and sets no target
    _g("jobpool", 1, 150, 25, wait_ms=200),
    _g("huey", 1, 75, 30, processes=1, wait_ms=200),
]


def test_io_figures_per_record():
    from benchmarks import iobound

    rec = G_RECORDS[0]
    assert iobound.per_100mb(rec) == 6_000
    assert iobound.ceiling(rec) == 1_600  # 2 workers x 16 / 0.02 s
    assert iobound.of_ceiling(rec) == 1_500 / 1_600
    assert iobound.ceiling(G_RECORDS[-2]) == 160  # 32 / 0.2 s
    assert iobound.per_100mb({"processing_per_s": 10, "memory": {}}) is None
    assert iobound.jobs(20) == 6000 and iobound.jobs(200) == 500  # ~4 s at the ceiling; 1 in 12


def test_io_targets_pair_each_run_with_its_best_peer():
    from benchmarks import iobound

    g = iobound.select(G_RECORDS, 20)
    assert set(g) == {"jobpool", "dramatiq", "huey"} and len(g["jobpool"]) == 2
    peer, winners = report.best_peer_ratios(g, iobound.per_100mb)
    assert peer == [6_000 / 2_500, 4_000 / 2_500] and winners == ["dramatiq", "huey"]
    verdict = {n: (m, met) for n, m, met in report.verdicts(RECORDS, None, G_RECORDS)}
    per_mb, met = verdict["G 20 ms: jobs/s per 100 MB USS ≥ 2× the best peer's"]
    assert met is True and per_mb.startswith("2.00× (1.60–2.40), vs dramatiq, huey")
    ceiling, met = verdict["G 20 ms: jobs/s ≥ 0.9× the ceiling (workers × concurrency / 20 ms)"]
    assert met is False and ceiling.startswith("0.78×")  # median of 0.9375 and 0.625


def test_io_targets_are_pending_while_jobpool_refuses_concurrency():
    refused = [
        _g("jobpool", 1, 96, 24, threads=1, concurrency_refused=16),
        _g("huey", 1, 600, 30, processes=1),
    ]
    verdict = {n: (m, met) for n, m, met in report.verdicts(RECORDS, None, refused)}
    measured, met = verdict["G 20 ms: jobs/s ≥ 0.9× the ceiling (workers × concurrency / 20 ms)"]
    assert met is None and "0.96×" in measured and "refused `concurrency = 16`" in measured


def test_io_table_and_last_lines():
    from benchmarks import iobound

    capped = [*G_RECORDS, {**_g("celery", 1, 300, 40, processes=1), "done": 1500}]
    table = iobound.table(capped, 20).splitlines()
    assert table[2] == (
        "| **jobpool** | 2 × 16 | 1,600 | 1,250 (1,000–1,500) | 0.78× (0.62–0.94) | 25.0 | 50.0 "
        "| 5,000 (4,000–6,000) | all |"
    )
    assert [row.split(" | ")[0] for row in table[2:]] == ["| **jobpool**", "| huey", "| celery",
                                                          "| dramatiq"]  # fmt: skip
    assert table[4].endswith("| 1,500 of 2,000 (capped) |")
    assert iobound.summary_lines(G_RECORDS) == [
        "G 20 ms jobpool/best-peer, jobs/s per 100 MB USS: 2.00 (1.60–2.40) (vs dramatiq, huey)",
        "G 20 ms jobpool/ceiling: 0.78 (0.62–0.94) (2 × 16, ceiling 1,600 jobs/s)",
        "G 200 ms jobpool/best-peer, jobs/s per 100 MB USS: 2.40 (vs huey)",
        "G 200 ms jobpool/ceiling: 0.94 (2 × 16, ceiling 160 jobs/s)",
    ]


def test_io_command_lines_and_jobpool_config(tmp_path):
    try:
        import tomllib
    except ImportError:  # Python 3.10: jobpool depends on tomli there
        import tomli as tomllib

    from benchmarks.runner import Bench
    from benchmarks.targets import TARGETS

    env = {"BENCH_REDIS_URL": "redis://127.0.0.1:1/0", "BENCH_JOBPOOL_CONFIG": "x.toml"}
    huey = TARGETS["huey"].workers(1, env, threads=16)
    assert huey == [[*huey[0][:3], "-w", "16", "-k", "thread"]]
    assert TARGETS["huey"].workers(2, env)[0][-4:] == ["-w", "2", "-k", "process"]
    celery = TARGETS["celery"].workers(1, env, threads=16)[0]
    assert celery[-6:] == ["-c", "16", "-P", "threads", "-n", "bench0@%h"]
    assert TARGETS["dramatiq"].workers(2, env, threads=16)[0][-4:] == [
        "--processes", "2", "--threads", "16",
    ]  # fmt: skip
    assert TARGETS["arq"].workers(1, env, threads=32)[0][-2:] == ["worker", "32"]
    assert TARGETS["arq"].workers(2, env) == [TARGETS["arq"].workers(1, env)[0]] * 2

    b = Bench("redis://127.0.0.1:1/0", tmp_path, verbose=False)  # no connection is made
    plain = tomllib.loads(b.jobpool_config(2).read_text())
    assert plain["pool"] == {"workers": 2} and "queues" not in plain
    many = tomllib.loads(b.jobpool_config(2, 16).read_text())
    assert many["pool"] == {"workers": 2}
    assert many["queues"] == {"default": {"concurrency": 16}}
