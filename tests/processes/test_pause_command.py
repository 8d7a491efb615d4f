"""`jobpool pause QUEUE` / `jobpool resume QUEUE` against a real `jobpool start`: the workers
say so in their titles and claim nothing meanwhile; `jobpool stats` marks the queue."""

from __future__ import annotations

import json
import time

from helpers import wait_until
from jobs import Record, runs
from masters import toml
from test_cancel_command import jobpool


def test_a_paused_queue_runs_nothing_until_resumed_and_its_workers_say_so(
    master, redis_url, redis_qm, tmp_path
):
    m = master(toml(redis_url, queues={"default": {"workers": 2}}), workers=2)
    done = jobpool("pause", "default", "-c", str(m.config))
    assert done.returncode == 0 and "paused" in done.stdout, done.stderr
    wait_until(lambda: all(t.endswith(" paused") for t in m.workers().values()), 5, 0.05, "titles")
    path = tmp_path / "out"
    job_id = redis_qm.push(Record(str(path)))
    time.sleep(1.5)
    assert runs(path) == [] and redis_qm.get_job_status(job_id)["status"] == "queued"
    stats = jobpool("stats", "--json", "-c", str(m.config))
    assert json.loads(stats.stdout)["default"]["paused"] is True
    again = jobpool("pause", "default", "-c", str(m.config))
    assert again.returncode == 0 and "already paused" in again.stdout

    done = jobpool("resume", "default", "-c", str(m.config))
    assert done.returncode == 0 and "resumed" in done.stdout, done.stderr
    wait_until(lambda: runs(path) == ["ran"], 5, 0.05, "the job to run")
    wait_until(lambda: all(t.endswith(" idle") for t in m.workers().values()), 5, 0.05, "idle")


def test_pausing_an_invalid_queue_name_is_a_usage_error(redis_url, tmp_path):
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text(f'[redis]\nurl = "{redis_url}"\n')
    done = jobpool("pause", "no spaces", "-c", str(cfg))
    assert done.returncode == 2 and "invalid queue name" in done.stderr
