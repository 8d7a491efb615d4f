"""Schedules under real `jobpool start` masters on one redis-server: every tick pushes exactly
one job while masters start and are SIGKILLed around the ticks, each within a second of its
tick; a missed tick is caught up once (or skipped) after every master was down; SIGHUP picks up
a new schedule; `jobpool check`, `jobpool schedules` and `jobpool stats` show them."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter

import pytest
from helpers import REPO, SUPPORT, wait_until
from jobs import runs
from masters import toml

ONE_WORKER = {"default": {"workers": 1}}


def schedule(name: str, **keys: object) -> str:
    lines = [f"[schedules.{name}]", *(f"{k} = {_toml(v)}" for k, v in keys.items())]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def records(redis_client, name: str) -> list[dict]:
    """The records of the jobs schedule `name` pushed to the default queue, oldest tick first."""
    raw = redis_client.hgetall("jobpool:{default}:state").values()
    found = [json.loads(r) for r in raw]
    return sorted((r for r in found if r.get("schedule") == name), key=lambda r: r["tick_at"])


def sleep_to_phase(period: float, phase: float) -> None:
    """Sleep until the wall clock is `phase` seconds past a multiple of `period`."""
    time.sleep((phase - time.time() % period) % period)


def cli(config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobpool.cli", *args, "-c", str(config)],
        cwd=SUPPORT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.timing
def test_three_masters_killed_around_the_ticks_push_each_tick_once(
    master, redis_url, redis_client, tmp_path
):
    out = tmp_path / "runs"
    cfg = toml(redis_url, queues=ONE_WORKER) + schedule(
        "pulse", every="1s", job="jobs:Record", args={"path": str(out), "tag": "pulse"}
    )
    masters = [master(cfg, workers=0) for _ in range(3)]
    for m in masters:
        m.wait_workers(1)
    for victim in range(3):  # SIGKILL one master a hair before, at and after a tick
        sleep_to_phase(1.0, (0.995, 0.0, 0.005)[victim])
        os.kill(masters[victim].pid, signal.SIGKILL)
        time.sleep(1.3)  # the others go on ticking; then a replacement starts
        masters[victim] = master(cfg, workers=0)
        masters[victim].wait_workers(1)
    time.sleep(2.0)  # ticks with all three masters up again
    found = records(redis_client, "pulse")
    ticks = [r["tick_at"] for r in found]
    assert Counter(ticks).most_common(1)[0][1] == 1, "a tick pushed two jobs"
    assert ticks == list(range(ticks[0], ticks[-1] + 1000, 1000)), "a tick pushed no job"
    assert len(ticks) >= 8
    late = [(r["created_at"] - r["tick_at"]) / 1000 for r in found[1:]]  # the first: at start
    print(
        f"{len(ticks)} ticks, pushed after the tick: median {statistics.median(late) * 1000:.1f}"
        f" ms, max {max(late) * 1000:.1f} ms"
    )
    assert max(late) < 1.0
    for m in masters:  # the schedule is removed: no more ticks; then every job must have run once
        m.config.write_text(toml(redis_url, queues=ONE_WORKER))
        m.send(signal.SIGHUP)
        m.wait_log(r"SIGHUP: schedules: none")
    pushed = records(redis_client, "pulse")
    wait_until(
        lambda: all(r["status"] == "completed" for r in records(redis_client, "pulse")),
        20,
        0.1,
        "every pushed job ran",
    )
    assert len(records(redis_client, "pulse")) == len(pushed)
    assert len(runs(out)) == len(pushed)


def test_after_every_master_was_down_the_last_missed_tick_runs_once_or_never(
    master, redis_url, redis_client, tmp_path
):
    out = tmp_path / "runs"
    args = {"path": str(out)}
    cfg = toml(redis_url, queues=ONE_WORKER)
    cfg += schedule("late", every="5s", grace="1s", job="jobs:Record", args=args)
    cfg += schedule("skip", every="5s", grace="1s", catch_up="none", job="jobs:Record", args=args)
    first = master(cfg, workers=1)
    wait_until(lambda: records(redis_client, "late") and records(redis_client, "skip"), 12, 0.05)
    os.kill(first.pid, signal.SIGKILL)
    down = time.time()
    last_run = {n: records(redis_client, n)[-1]["tick_at"] for n in ("late", "skip")}
    time.sleep(5.0)  # at least one tick passes with no master
    sleep_to_phase(5.0, 1.3)  # so that the next master first looks more than 1 s after a tick
    missed = int(time.time() // 5 * 5 * 1000)
    assert missed / 1000 > down
    second = master(cfg, workers=1)
    second.wait_log(r"schedule skip: tick \S+ skipped", 10)
    wait_until(lambda: records(redis_client, "skip")[-1]["tick_at"] > missed, 10, 0.05)
    late = [r["tick_at"] for r in records(redis_client, "late") if r["tick_at"] > last_run["late"]]
    skip = [r["tick_at"] for r in records(redis_client, "skip") if r["tick_at"] > last_run["skip"]]
    assert late[:2] == [missed, missed + 5000]  # caught up once, then on time
    assert skip[:1] == [missed + 5000]  # never caught up
    caught_up = next(r for r in records(redis_client, "late") if r["tick_at"] == missed)
    assert caught_up["created_at"] - missed > 1000  # pushed late, by the second master


def test_check_start_and_sighup_resolve_schedules_and_the_cli_lists_them(
    master, redis_url, redis_client, tmp_path
):
    out = tmp_path / "runs"
    bad = tmp_path / "bad.toml"
    bad.write_text(toml(redis_url) + schedule("typo", every="1m", job="jobs:Recrod"))
    checked = cli(bad, "check")
    assert checked.returncode == 2 and "schedules.typo.job: unknown job 'jobs:Recrod'" in (
        checked.stderr
    )
    wrong_args = tmp_path / "args.toml"
    wrong_args.write_text(
        toml(redis_url) + schedule("n", every="1m", job="jobs:Record", args={"nope": 1})
    )
    assert "schedules.n.args: Record(...)" in cli(wrong_args, "check").stderr
    started = subprocess.run(
        [sys.executable, "-m", "jobpool.cli", "start", "-c", str(bad)],
        cwd=SUPPORT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 2 and "schedules.typo.job: unknown job" in started.stderr

    base = toml(redis_url, queues=ONE_WORKER)
    m = master(base, workers=1)
    m.config.write_text(
        base + schedule("added", every="1s", job="jobs:Record", args=[str(out), "added"])
    )
    m.send(signal.SIGHUP)
    m.wait_log(r"SIGHUP: schedules: added \(new or changed: added\)")
    wait_until(lambda: "added" in runs(out), 10, 0.05, "the new schedule ran")
    m.config.write_text(base + schedule("added", every="1s", job="jobs:Nope"))
    m.send(signal.SIGHUP)
    m.wait_log(r"SIGHUP: the schedules of \S+ do not resolve, keeping the running config")

    asked = time.time()
    listed = cli(m.config, "schedules", "--json")
    answered = time.time()
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["name"] == "added" and row["queue"] == "default"
    assert row["last_job"].startswith("default:") and row["last_run"] <= answered
    # The next whole second after the command read the clock (between asked and answered).
    assert asked < row["next_run"] <= answered + 1.0
    table = cli(m.config, "schedules").stdout
    assert "added" in table and row["last_job"][:12] in table
    stats = cli(m.config, "stats").stdout
    assert "schedule" in stats and "added" in stats
