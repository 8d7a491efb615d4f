"""Chains and batches in real processes: under `jobpool start`, jobs that SIGKILL their worker
(KillSelf, two attempts) are failed by the master's requeue.lua, which counts the batch and
stops the chain in the same step; the batch-mates the dead worker had claimed go back
uncounted, so the counters end exact and each callback runs once. And `jobpool stats` shows
the running batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import REPO, SUPPORT, wait_until
from jobs import KillSelf, Record, runs
from masters import toml

from jobpool import Worker, batch, chain


def test_deaths_mid_batch_and_mid_chain_count_once_and_stop_the_chain(
    master, redis_url, redis_qm, tmp_path
):
    out, calls, poison = (str(tmp_path / name) for name in ("out", "calls", "poison"))
    master(toml(redis_url, pool={"lease": 30}), workers=2)
    batch_id = redis_qm.push(
        batch(
            [Record(out, "a"), KillSelf(poison), Record(out, "b"), Record(out, "c")],
            then=Record(calls, "then"),
            catch=Record(calls, "catch"),
            finally_=Record(calls, "finally"),
        )
    )
    chain_id = redis_qm.push(
        chain(Record(out, "c1"), KillSelf(str(tmp_path / "poison2")), Record(out, "c3"))
    )

    def done() -> bool:
        status = redis_qm.batch_status(batch_id) or {}
        steps = (redis_qm.get_job_status(chain_id) or {}).get("status")
        return status.get("status") == "failed" and len(runs(calls)) == 2 and steps == "failed"

    wait_until(done, 20, 0.05, "the batch and the chain to finish")
    status = redis_qm.batch_status(batch_id)
    counts = {key: status[key] for key in ("total", "pending", "completed", "failed", "cancelled")}
    assert counts == {"total": 4, "pending": 0, "completed": 3, "failed": 1, "cancelled": 0}
    assert status["progress"] == 1.0
    assert sorted(runs(calls)) == ["catch", "finally"]  # each once; `then` never
    callbacks = {role: c["status"] for role, c in status["callbacks"].items()}
    assert callbacks == {"then": "cancelled", "catch": "completed", "finally": "completed"}
    assert sorted(runs(out)) == ["a", "b", "c", "c1"]  # c3 never ran
    steps = redis_qm.get_job_status(chain_id)["steps"]
    assert [s["status"] for s in steps] == ["completed", "failed", "cancelled"]
    assert steps[1]["error"] == "worker killed by signal 9 (SIGKILL)"
    assert sum(word.startswith("start:") for word in runs(poison)) == 2  # two deaths


def test_stats_shows_running_batches(redis_url, redis_qm, tmp_path):
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text(toml(redis_url, queues={"default": {"workers": 1}}))
    path = str(tmp_path / "out")
    finished = redis_qm.push(batch([Record(path)]))
    running = redis_qm.push(batch([Record(path) for _ in range(4)], finally_=Record(path)))
    worker = Worker(redis_qm)
    for _ in range(2):  # the first job of each: one batch half done, the other over
        worker.process(redis_qm.pop())
    worker.session.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "jobpool.cli", "stats", "-c", str(cfg)]
    text = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=SUPPORT, timeout=60)
    assert text.returncode == 0, text.stderr
    [line] = [line for line in text.stdout.splitlines() if line.startswith(running)]
    assert line.split()[1:] == ["1/4", "0", "25%"] and finished not in text.stdout
    out = subprocess.run([*argv, "--json"], capture_output=True, text=True, env=env, cwd=SUPPORT)
    [shown] = json.loads(out.stdout)["default"]["batches"]
    assert (shown["id"], shown["pending"], shown["progress"]) == (running, 3, 0.25)
