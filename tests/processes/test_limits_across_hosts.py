"""Rate and concurrency limits hold across masters: three `jobpool start` on one Redis share a
queue's `rate_limit` and `max_running`, decided in Redis at each claim."""

from __future__ import annotations

import json

from helpers import wait_until
from jobs import Overlap, Stamp, Throttled, stamps, windows
from masters import toml
from test_cancel_command import jobpool


def most_in_any_window(times: list[float], width: float) -> int:
    times = sorted(times)
    most, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        most = max(most, i - j + 1)
    return most


def test_a_rate_limit_holds_across_three_masters(master, redis_url, redis_qm, tmp_path):
    cfg = toml(redis_url, queues={"default": {"workers": 2, "rate_limit": "20/s"}})
    for _ in range(3):
        master(cfg, workers=2)
    path = tmp_path / "stamps"
    ids = redis_qm.push_many([Stamp(str(path)) for _ in range(200)])
    wait_until(lambda: len(stamps(path)) == 200, 30, 0.1, "200 jobs to run")
    # A job starts when a claim begins it: its record's started_at, on Redis's clock.
    started = [redis_qm.get_job_status(i)["started_at"] for i in ids]
    assert max(started) - min(started) >= 9.0  # the first 20 may start at once
    assert most_in_any_window(started, 1.0) <= 20
    assert max(stamps(path)) - min(stamps(path)) >= 9.0  # as the jobs themselves saw it


def test_max_running_holds_across_three_masters(master, redis_url, redis_qm, tmp_path):
    cfg = toml(redis_url, queues={"default": {"workers": 2, "max_running": 2}})
    masters = [master(cfg, workers=2) for _ in range(3)]
    path = tmp_path / "windows"
    redis_qm.push_many([Overlap(str(path), 0.2) for _ in range(16)])
    wait_until(lambda: len(windows(path)) == 16, 30, 0.1, "16 jobs to run")
    rows = windows(path)
    moments = sorted({r[2] for r in rows} | {r[3] - 1e-6 for r in rows})
    running = max(sum(1 for r in rows if r[2] <= t < r[3]) for t in moments)
    assert running == 2, rows  # two at a time, never three
    assert len({r[0] for r in rows}) >= 2  # ...spread over several workers
    stats = jobpool("stats", "-c", str(masters[0].config)).stdout
    assert "max_running 2" in stats
    numbers = json.loads(jobpool("stats", "--json", "-c", str(masters[0].config)).stdout)
    assert numbers["default"]["limits"] == {"rate_limit": None, "max_running": 2}


def test_a_job_classs_rate_limit_holds_across_two_masters(master, redis_url, redis_qm, tmp_path):
    cfg = toml(redis_url, queues={"default": {"workers": 2}})
    for _ in range(2):
        master(cfg, workers=2)
    path = tmp_path / "stamps"
    ids = redis_qm.push_many([Throttled(str(path)) for _ in range(9)])  # 3/s
    others = redis_qm.push_many([Stamp(str(tmp_path / "others")) for _ in range(5)])
    wait_until(lambda: len(stamps(path)) == 9, 15, 0.1, "9 throttled jobs to run")
    started = [redis_qm.get_job_status(i)["started_at"] for i in ids]
    assert max(started) - min(started) >= 2.0
    assert most_in_any_window(started, 1.0) <= 3
    assert {redis_qm.get_job_status(i)["attempts"] for i in ids} == {1}  # waits cost nothing
    # The other jobs did not wait behind the throttled ones.
    assert max(redis_qm.get_job_status(i)["finished_at"] for i in others) < max(started)
