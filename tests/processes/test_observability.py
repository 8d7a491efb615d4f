"""Metrics from a real master, `jobpool stats`, and JSON logs: what operators see."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest
from helpers import REPO, SUPPORT, free_port, scrape, wait_until
from jobs import Fail, KillSelf, Record, Sleep
from masters import toml

from jobpool import QueueManager, Worker
from jobpool.drivers.redis import RedisDriver
from jobpool.supervisor.metrics import Metrics


def test_metrics_count_jobs_by_outcome_and_survive_worker_restarts(
    master, redis_url, redis_qm, tmp_path
):
    port = free_port()
    cfg = toml(redis_url) + f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
    m = master(cfg, workers=2)
    path = str(tmp_path / "out")
    done = redis_qm.push_many([Record(path) for _ in range(5)])
    failing = Fail(path)
    failing.max_tries, failing.retry_delay = 2, 0
    failed = redis_qm.push(failing)
    for job_id in [*done, failed]:
        wait_until(
            lambda j=job_id: redis_qm.get_job_status(j)["status"] in ("completed", "failed"), 15
        )
    jobs = 'jobpool_jobs_total{job_class="%s",outcome="%s",queue="default"}'
    wait_until(lambda: scrape(port).get(jobs % ("Fail", "failed")) == 1, 10)
    before = scrape(port)
    assert before[jobs % ("Record", "completed")] == 5
    assert before[jobs % ("Fail", "retried")] == 1
    assert before['jobpool_job_duration_seconds_count{queue="default"}'] == 7
    assert before['jobpool_workers{queue="default",state="idle"}'] == 2
    assert before['jobpool_queue_jobs{queue="default",state="failed"}'] == 1
    assert before['jobpool_queue_jobs{queue="default",state="ready"}'] == 0
    rss = [v for k, v in before.items() if k.startswith("jobpool_worker_rss_bytes")]
    assert len(rss) == 2 and all(v > 1_000_000 for v in rss)

    killer = KillSelf(path)
    killer.max_tries = 1
    redis_qm.push(killer)  # kills its worker: counted as a crash restart
    restart = 'jobpool_worker_restarts_total{queue="default",reason="crash"}'
    wait_until(lambda: scrape(port).get(restart) == 1, 15)
    m.wait_workers(2)
    redis_qm.push(Record(path))
    wait_until(lambda: scrape(port).get(jobs % ("Record", "completed")) == 6, 10)


def test_metrics_port_taken_is_a_clear_error(master, redis_url, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        m = master(toml(redis_url) + f'[metrics]\nlisten = "127.0.0.1:{port}"\n', workers=0)
        assert m.wait_exit(20) == 2
    assert f"127.0.0.1:{port}" in m.log() and "Address already in use" in m.log()


def _stats(cfg, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "jobpool.cli", "stats", "-c", str(cfg), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=SUPPORT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def oldest_waiting(qm: QueueManager) -> float:
    """How long the default queue's oldest waiting job has waited, 0 when none waits."""
    return qm.driver.stats("default")["oldest_waiting_age"] or 0.0


def test_stats_json_matches_what_was_pushed_and_run(redis_url, redis_qm, tmp_path):
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text(toml(redis_url, queues={"default": {"workers": 1}, "emails": {"workers": 1}}))
    path = str(tmp_path / "out")
    redis_qm.push_many([Record(path) for _ in range(5)])
    redis_qm.later(Record(path), 60)
    redis_qm.later(Record(path), 60)
    failing = Fail(path)
    failing.max_tries = 1
    redis_qm.push(failing, "emails")
    worker = Worker(redis_qm)
    for _ in range(3):
        worker.process(redis_qm.pop())
    Worker(redis_qm, "emails").process(redis_qm.pop("emails"))
    wait_until(lambda: oldest_waiting(redis_qm) >= 0.15, 5, message="the oldest job to wait 0.15 s")
    stats = json.loads(_stats(cfg, "--json"))
    default, emails = stats["default"], stats["emails"]
    assert (default["ready"], default["delayed"], default["in_flight"]) == (2, 2, 0)
    assert default["done_last_minute"] == 3 and default["failed_last_minute"] == 0
    assert 0.15 <= default["oldest_waiting_age"] < 30
    assert (emails["failed"], emails["failed_last_minute"], emails["ready"]) == (1, 1, 0)
    assert emails["oldest_waiting_age"] is None


def test_stats_table_has_a_row_per_queue(redis_url, redis_qm, tmp_path):
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text(toml(redis_url, queues={"default": {"workers": 1}, "emails": {"workers": 1}}))
    redis_qm.push(Record(str(tmp_path / "out")), "emails")
    lines = _stats(cfg).splitlines()
    assert lines[0].split()[:4] == ["queue", "workers", "ready", "delayed"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"default", "emails"}
    assert rows["emails"][2] == "1" and rows["default"][-1] == "-"


def test_json_logs_carry_job_id_queue_and_job(master, redis_url, redis_qm, tmp_path):
    m = master('log_format = "json"\n' + toml(redis_url), workers=2)
    job_id = redis_qm.push(Record(str(tmp_path / "out")))
    wait_until(lambda: redis_qm.get_job_status(job_id)["status"] == "completed", 10)
    wait_until(lambda: job_id in m.log(), 5)
    records = [json.loads(line) for line in m.log().splitlines() if line.startswith("{")]
    assert records and len(records) == len([x for x in m.log().splitlines() if x.strip()])
    done = [r for r in records if r.get("job_id") == job_id]
    assert done and done[0]["queue"] == "default" and done[0]["job"] == "Record"
    assert re.match(r"completed in", done[0]["message"])


RESTART_REASONS = ("crash", "memory", "max_jobs", "timeout", "cancel")


def test_metrics_show_the_oldest_waiting_job_restarts_at_zero_and_no_created_series(
    master, redis_url, redis_qm, tmp_path
):
    port = free_port()
    cfg = toml(redis_url, pool={"prefetch": 1}, queues={"default": {"workers": 1}})
    master(cfg + f'[metrics]\nlisten = "127.0.0.1:{port}"\n', workers=1)
    samples = scrape(port)
    for reason in RESTART_REASONS:
        assert samples[f'jobpool_worker_restarts_total{{queue="default",reason="{reason}"}}'] == 0
    oldest = 'jobpool_queue_oldest_age_seconds{queue="default"}'
    assert samples[oldest] == 0
    path = tmp_path / "out"
    redis_qm.push(Sleep(str(path), 2))  # holds the only worker
    wait_until(lambda: path.exists(), 10)
    waiting = redis_qm.push(Record(str(path)))  # waits behind it
    assert wait_until(lambda: scrape(port)[oldest] >= 0.3, 5)
    wait_until(lambda: redis_qm.get_job_status(waiting)["status"] == "completed", 10)
    completed = 'jobpool_jobs_total{job_class="Record",outcome="completed",queue="default"}'
    samples = wait_until(lambda: (s := scrape(port)).get(completed) == 1 and s, 5)
    assert not [name for name in samples if "_created" in name]


def test_metrics_scrape_survives_any_redis_error_and_logs_it_once(redis_client, caplog):
    from prometheus_client import generate_latest

    redis_client.set("jobpool:{default}:ready", "not a list")  # WRONGTYPE: a ResponseError
    queues = ["default", "emails"]  # emails reads well: the error is logged once all the same
    metrics = Metrics(("127.0.0.1", 0), RedisDriver(redis_client), lambda: queues)
    with caplog.at_level(logging.WARNING, logger="jobpool.metrics"):
        for _ in range(3):
            text = generate_latest(metrics.registry).decode()
            assert 'jobpool_workers{queue="default",state="idle"} 0.0' in text
            assert 'jobpool_queue_jobs{queue="emails",state="ready"} 0.0' in text
    warnings = [r for r in caplog.records if r.name == "jobpool.metrics"]
    assert len(warnings) == 1 and "WRONGTYPE" in warnings[0].getMessage()


def test_stats_lists_queues_that_hold_jobs_but_have_no_workers(redis_url, redis_client, tmp_path):
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text(toml(redis_url, queues={"default": {"workers": 1}}))
    path = str(tmp_path / "out")
    with QueueManager(redis_url) as qm, QueueManager(redis_url, prefix="other") as elsewhere:
        qm.push(Record(path), "orphans")
        qm.later(Record(path), 60, "later-only")
        failing = Fail(path)
        failing.max_tries = 1
        qm.push(failing, "broken")
        Worker(qm, "broken").process(qm.pop("broken"))
        elsewhere.push(Record(path), "not-ours")
    redis_client.config_resetstat()
    stats = json.loads(_stats(cfg, "--json"))
    assert set(stats) - {"~hosts"} == {"default", "orphans", "later-only", "broken"}
    assert stats["default"]["unserved"] is False
    assert stats["orphans"]["unserved"] is True and stats["orphans"]["ready"] == 1
    assert stats["later-only"]["unserved"] is True and stats["later-only"]["delayed"] == 1
    # the Worker above still holds a lease on "broken": someone serves it, for now
    assert stats["broken"]["failed"] == 1 and stats["broken"]["workers"] == 1
    assert stats["broken"]["unserved"] is False
    commands = redis_client.info("commandstats")
    assert "cmdstat_scan" in commands and "cmdstat_keys" not in commands
    rows = {line.split()[0]: line for line in _stats(cfg).splitlines()[1:]}
    assert "unserved" in rows["orphans"] and "unserved" not in rows["default"]
    only = json.loads(_stats(cfg, "--json", "default"))
    assert set(only) == {"default"}


def test_counts_and_stats_leave_out_wake_tokens(redis_url, redis_client, redis_qm, tmp_path):
    session = redis_qm.driver.session()
    for worker_id in ("w1", "w2"):  # two idle workers: a delayed job wakes both
        session.fetch("default", worker_id)
    session.close()
    redis_qm.later(Record(str(tmp_path / "out")), 60)
    assert redis_client.lrange("jobpool:{default}:ready", 0, -1) == [b"~wake", b"~wake"]
    assert redis_qm.counts()["ready"] == 0 and redis_qm.size() == 1
    redis_qm.push(Record(str(tmp_path / "out")))
    stats = redis_qm.driver.stats("default")
    assert (stats["ready"], stats["delayed"]) == (1, 1)
    assert stats["oldest_waiting_age"] is not None


def test_oldest_waiting_counts_a_due_delayed_job_nobody_promoted(redis_qm, redis_client, tmp_path):
    redis_qm.later(Record(str(tmp_path / "out")), 0.05)  # due soon; no worker fetches to promote it
    wait_until(lambda: oldest_waiting(redis_qm) >= 0.2, 5, message="the due job to wait 0.2 s")
    assert oldest_waiting(redis_qm) < 5


UNSERVED_JOBS = (
    "from jobpool import Job\n\n"
    "class Report(Job):\n    queue = 'reports'\n\n"
    "    def handle(self):\n        pass\n"
)


@pytest.mark.parametrize("preload", [False, True])
def test_start_warns_once_of_a_job_class_whose_queue_has_no_workers(
    master, redis_url, redis_client, tmp_path, preload
):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "routed_jobs.py").write_text(UNSERVED_JOBS)
    queues = {"default": {"workers": 2}, "emails": {"workers": 1}}
    cfg = toml(redis_url, imports=["jobs", "routed_jobs"], pool={"preload": preload}, queues=queues)
    m = master(cfg, workers=3, pythonpath=[mods])

    def registered() -> bool:  # every worker has imported its jobs and fetched once
        return [redis_client.zcard(f"jobpool:{{{q}}}:workers") for q in queues] == [2, 1]

    wait_until(registered, 15)
    m.wait_log("routed_jobs:Report")
    warnings = [line for line in m.log().splitlines() if "routed_jobs:Report" in line]
    assert len(warnings) == 1, m.log()
    assert "'reports'" in warnings[0] and "WARNING" in warnings[0].upper()
