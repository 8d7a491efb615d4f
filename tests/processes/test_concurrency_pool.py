"""`concurrency = N` under a real `jobpool start`: one worker process runs N jobs at once, a
SIGKILL of it hands all of them back at once, a sync job past its timeout has its worker replaced
once the others finish, an async job's timeout cancels that task alone, and a drain finishes
every running job."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from helpers import wait_until
from jobs import AsyncOverlap, AsyncSleep, KillSelf, Overlap, Stuck, runs, windows
from masters import toml

from jobpool import QueueManager


def status(qm: QueueManager, job_id: str) -> dict[str, Any]:
    return qm.get_job_status(job_id) or {}


def wait_all(qm: QueueManager, ids: list[str], want: str, timeout: float = 20.0) -> None:
    wait_until(
        lambda: all(status(qm, i).get("status") == want for i in ids),
        timeout,
        0.05,
        f"all {len(ids)} jobs {want}",
    )


def started(path: Path) -> list[int]:
    return [int(line.split(":")[1]) for line in runs(path) if line.startswith("start:")]


def config(url: str, concurrency: int, **queue: Any) -> str:
    return toml(url, queues={"default": {"workers": 1, "concurrency": concurrency, **queue}})


def test_eight_sleeping_jobs_run_at_once_in_one_worker_process(
    master, redis_url, redis_qm, tmp_path
):
    m = master(config(redis_url, 8), workers=1)
    path = tmp_path / "windows"
    ids = redis_qm.push_many([Overlap(str(path), 1.5) for _ in range(8)])
    (pid,) = m.workers()
    wait_until(lambda: "busy 8/8" in m.workers().get(pid, ""), 5, 0.02, "the title busy 8/8")
    wait_all(redis_qm, ids, "completed")
    rows = windows(path)
    assert {r[0] for r in rows} == {pid}  # one process
    assert len({r[1] for r in rows}) == 8  # eight threads
    assert max(r[2] for r in rows) < min(r[3] for r in rows)  # all at once
    wait_until(lambda: m.workers().get(pid, "").endswith(" idle"), 5, 0.05, "the idle title")


def test_sigkill_of_a_busy_worker_hands_all_its_jobs_back_at_once(
    master, redis_url, redis_qm, tmp_path
):
    m = master(config(redis_url, 8), workers=1)
    path = tmp_path / "windows"
    ids = redis_qm.push_many([Overlap(str(path), 3) for _ in range(8)])
    wait_until(lambda: len(started(path)) == 8, 10, 0.02, "8 jobs to start")
    (pid,) = m.workers()
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    m.wait_workers(1, gone=[pid])
    wait_until(lambda: len(started(path)) == 16, 10, 0.02, "8 jobs to start again")
    wait_all(redis_qm, ids, "completed")
    rows = windows(path)
    assert len(rows) == 8 and pid not in {r[0] for r in rows}
    # All 8 again, at once and long before their lease (2 s) would have lapsed.
    assert max(r[2] for r in rows) - killed_at < 1.5
    assert max(r[2] for r in rows) < min(r[3] for r in rows)
    assert {status(redis_qm, i)["attempts"] for i in ids} == {2}  # the death counted


def test_a_sync_job_past_its_timeout_replaces_the_worker_once_the_others_finish(
    master, redis_url, redis_qm, tmp_path
):
    m = master(config(redis_url, 4, graceful_timeout=10), workers=1)
    (pid,) = m.workers()
    stuck_path = tmp_path / "stuck"
    stuck = redis_qm.push(Stuck(str(stuck_path), 60))  # timeout 1, max_tries 2
    path = tmp_path / "windows"
    others = redis_qm.push_many([Overlap(str(path), 2.5) for _ in range(3)])
    m.wait_workers(1, gone=[pid], timeout=20)
    # The others finished in the old worker, each on its first attempt.
    assert {r[0] for r in windows(path)} == {pid}
    assert [status(redis_qm, i)["attempts"] for i in others] == [1, 1, 1]
    assert ("default.0", pid, "timeout") in m.exits(), m.log()
    # The stuck job counted one attempt per timeout, and failed after max_tries.
    record = wait_until(
        lambda: status(redis_qm, stuck).get("status") == "failed" and status(redis_qm, stuck),
        20,
        0.05,
        "the stuck job to fail",
    )
    assert record["attempts"] == 2
    assert record["error"] == "JobTimeoutError: timeout after 1 s"
    wait_until(lambda: "failed:JobTimeoutError" in runs(stuck_path), 5, 0.05, "failed() hook")


def test_an_async_jobs_timeout_cancels_only_its_task(master, redis_url, redis_qm, tmp_path):
    m = master(config(redis_url, 4), workers=1)
    (pid,) = m.workers()
    slow = redis_qm.push(AsyncSleep(str(tmp_path / "slow"), 30))  # timeout 1, max_tries 1
    path = tmp_path / "windows"
    others = redis_qm.push_many([AsyncOverlap(str(path), 2) for _ in range(3)])
    wait_all(redis_qm, others, "completed")
    record = status(redis_qm, slow)
    assert record["status"] == "failed" and record["error"].startswith("JobTimeoutError")
    assert list(m.workers()) == [pid] and m.exits() == []  # the worker was not replaced


def test_a_drain_finishes_every_running_job(master, redis_url, redis_qm, tmp_path):
    m = master(config(redis_url, 4), workers=1)
    path = tmp_path / "windows"
    ids = redis_qm.push_many([Overlap(str(path), 1.5) for _ in range(4)])
    wait_until(lambda: len(started(path)) == 4, 10, 0.02, "4 jobs to start")
    m.send(signal.SIGTERM)
    assert m.wait_exit(15) == 0
    assert [status(redis_qm, i)["status"] for i in ids] == ["completed"] * 4
    assert [status(redis_qm, i)["attempts"] for i in ids] == [1] * 4


def test_a_poison_job_that_kills_its_worker_still_fails_after_max_tries(
    master, redis_url, redis_qm, tmp_path
):
    """A death counts an attempt for every job its worker had begun (none can be told apart
    from the one at fault), so the poison job ends failed with its hook run."""
    m = master(
        toml(redis_url, pool={"lease": 30}, queues={"default": {"workers": 2, "concurrency": 4}}), 2
    )
    path = tmp_path / "windows"
    others = redis_qm.push_many([Overlap(str(path), 0.5) for _ in range(6)])
    poison_path = tmp_path / "poison"
    poison = redis_qm.push(KillSelf(str(poison_path)))  # max_tries 2
    wait_until(
        lambda: any(x.startswith("failed:") for x in runs(poison_path)), 20, 0.05, "the hook"
    )
    record = status(redis_qm, poison)
    assert (record["status"], record["attempts"]) == ("failed", 2)
    assert len(started(poison_path)) == 2
    # Nothing is lost or stuck: each job beside it completed, or, begun beside the poison job
    # at both its deaths, failed for good as a worker death (documented in docs/concurrency.md).
    wait_until(
        lambda: all(status(redis_qm, i)["status"] in ("completed", "failed") for i in others),
        20,
        0.05,
        "the other jobs to end",
    )
    for job_id in others:
        record = status(redis_qm, job_id)
        if record["status"] == "failed":
            assert record["error"].startswith("worker killed by signal 9"), record
    assert m.exits() and all(reason == "crash" for _, _, reason in m.exits())
