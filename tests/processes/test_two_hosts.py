"""Two `jobpool start` masters against one Redis, as two hosts would run them: when one whole
host dies (its process group SIGKILLed, so no master is left to requeue anything), the other
takes its jobs over once their lease lapses and finishes them.
"""

from __future__ import annotations

import os
import signal

import psutil
from helpers import kill_tree, wait_until
from jobs import SlowFirst, runs
from masters import Master, toml

from jobpool import QueueManager


def status(qm: QueueManager, job_id: str) -> dict:
    return qm.get_job_status(job_id) or {}


def started_by(path) -> list[int]:
    return [int(line.split(":")[1]) for line in runs(path) if line.startswith("start:")]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_dead_hosts_jobs_are_finished_by_the_other_host_after_the_lease(redis_url, tmp_path):
    cfg = toml(redis_url, pool={"lease": 2, "prefetch": 1}, queues={"default": {"workers": 2}})
    qm = QueueManager(redis_url)
    a = b = None
    try:
        a = Master(tmp_path, cfg)
        a_workers = a.wait_workers(2)
        paths = [tmp_path / f"job{i}" for i in range(2)]
        ids = [qm.push(SlowFirst(str(p), first=60, then=0.1)) for p in paths]
        wait_until(lambda: all(started_by(p) for p in paths), 10, 0.05, "host A to start both")
        assert {started_by(p)[0] for p in paths} == set(a_workers)

        b = Master(tmp_path, cfg)
        b_workers = b.wait_workers(2)
        assert os.getpgid(a.pid) != os.getpgid(b.pid)  # two hosts: two process groups
        kill_tree(a.pid)  # host A is gone: master and workers at once
        a.proc.wait(10)
        wait_until(lambda: all(gone(pid) for pid in a_workers), 5, 0.05, "A's workers to die")

        for job_id in ids:
            record = wait_until(
                lambda j=job_id: status(qm, j).get("status") == "completed" and status(qm, j),
                15,
                0.05,
                f"{job_id} to be completed by host B",
            )
            assert record["attempts"] == 2, record
            assert "worker lost: its lease expired" in record["error"], record
        for path in paths:
            first, second = started_by(path)
            assert first in a_workers and second in b_workers, runs(path)
            assert runs(path)[-1] == f"done:{second}"
        b.assert_running()
        assert set(b.workers()) == set(b_workers)  # nobody on B died for it
        b.send(signal.SIGTERM)
        assert b.wait_exit(10) == 0
    finally:
        for m in (a, b):
            if m is not None:
                m.kill()
        qm.close()
