"""`[queues.NAME] serve = [...]` under a real `jobpool start`: a group of workers takes jobs from
several queues in priority order; its master renews and requeues on every queue it serves."""

from __future__ import annotations

import json
import os
import signal

from helpers import wait_until
from jobs import Record, Sleep, runs
from masters import toml
from test_cancel_command import jobpool


def test_a_group_serves_its_queues_and_a_killed_workers_job_comes_back_at_once(
    master, redis_url, redis_qm, tmp_path
):
    cfg = toml(redis_url, pool={"lease": 30}, queues={"web": {"serve": ["urgent", "low"]}})
    m = master(cfg, workers=1)
    (pid,) = m.workers()
    assert "worker web.0" in m.workers()[pid]

    path = tmp_path / "sleep"
    slow = redis_qm.push(Sleep(str(path), 30), "low")
    wait_until(lambda: (tmp_path / "sleep").exists(), 10, 0.05, "the low job to start")
    os.kill(pid, signal.SIGKILL)
    m.wait_workers(1, gone=[pid])
    # Requeued by the master at once (a 30 s lease could not have lapsed), and running again.
    wait_until(lambda: len(runs(path)) == 2, 10, 0.05, "the job to start again")
    assert redis_qm.get_job_status(slow)["attempts"] == 2

    done = tmp_path / "done"
    job = redis_qm.push(Record(str(done), "urgent"), "urgent")
    stats = json.loads(jobpool("stats", "--json", "-c", str(m.config)).stdout)
    assert {"urgent", "low"} <= set(stats) and "web" not in stats
    assert not stats["urgent"]["unserved"] and not stats["low"]["unserved"]
    redis_qm.cancel(slow)  # frees the worker for the urgent job
    wait_until(lambda: runs(done) == ["urgent"], 15, 0.05, "the urgent job")
    assert redis_qm.get_job_status(job)["status"] == "completed"
