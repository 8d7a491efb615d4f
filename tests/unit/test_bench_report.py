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
