"""Delayed jobs and retry backoff against a real redis-server, run by a Worker in a thread.

Start times are the jobs' own `time.time()` and due times are the records' `due_at` (the server's
clock): on one host both read the same system clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from helpers import blocked_in, wait_until
from jobs import Record, Stamp, stamps

from jobpool import QueueManager, Worker

QUEUE = "delayed"
CLOCK_SLACK = 0.002  # server times are whole milliseconds, floored


@contextmanager
def running_worker(redis_url: str) -> Iterator[Worker]:
    """A Worker on its own connections, looping in a thread until the block ends."""
    manager = QueueManager(redis_url)
    worker = Worker(manager, QUEUE)
    thread = threading.Thread(
        target=worker.run, kwargs={"install_signals": False, "keep_lease": False}, daemon=True
    )
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()  # noticed at the end of the current idle tick (1 s at most)
        thread.join(timeout=10)
        manager.close()
    assert not thread.is_alive(), "the worker thread did not stop"


def wait_completed(qm: QueueManager, job_id: str, timeout: float = 10.0) -> dict:
    def done() -> dict | None:
        record = qm.get_job_status(job_id) or {}
        return record if record.get("status") == "completed" else None

    return wait_until(done, timeout, message=f"{job_id} to complete")


def test_delayed_jobs_never_start_before_their_due_time(redis_qm, redis_url, tmp_path):
    with running_worker(redis_url):
        paths = [tmp_path / f"job{i}" for i in range(10)]
        ids = [redis_qm.later(Stamp(str(p)), 0.2 + 0.4 * i / 9, QUEUE) for i, p in enumerate(paths)]
        for job_id in ids:
            assert redis_qm.get_job_status(job_id)["status"] == "delayed"
        records = [wait_completed(redis_qm, job_id) for job_id in ids]
    for path, record in zip(paths, records, strict=True):
        (started,) = stamps(path)
        assert started >= record["due_at"], (started, record)


@pytest.mark.timing
def test_later_wakes_a_blocked_idle_worker_near_the_due_time(
    redis_qm, redis_server, redis_url, tmp_path
):
    with running_worker(redis_url):
        # Let the worker settle into an idle wait that began just now: with no delayed job it
        # waits a whole tick (1 s), so only the wake-up token can bring it back in time.
        warmup = redis_qm.push(Record(str(tmp_path / "warmup")), QUEUE)
        wait_completed(redis_qm, warmup)
        wait_until(lambda: blocked_in(redis_server), 5, message="the worker to block idle")
        job_id = redis_qm.later(Stamp(str(tmp_path / "late")), 0.1, QUEUE)
        record = wait_completed(redis_qm, job_id)
    (started,) = stamps(tmp_path / "late")
    # Not woken, the worker would start it up to about 0.9 s late (its tick less the 0.1 s delay):
    # 0.5 s is room for a loaded machine that still tells the two apart.
    assert record["due_at"] <= started < record["due_at"] + 0.5, (started, record)


def test_retry_waits_out_its_backoff(redis_qm, redis_url, tmp_path):
    path = tmp_path / "stamps"
    job = Stamp(str(path), fail_first=2)
    job.retry_delay = 0.3  # attempt 2 waits 0.3 s after attempt 1 fails, attempt 3 waits 0.6 s
    job.retry_jitter = False  # exactly those waits
    with running_worker(redis_url):
        job_id = redis_qm.push(job, QUEUE)
        record = wait_completed(redis_qm, job_id)
    first, second, third = stamps(path)
    assert record["attempts"] == 3
    assert second - first >= 0.3 - CLOCK_SLACK
    assert third - second >= 0.6 - CLOCK_SLACK
    assert third >= record["due_at"]  # the last retry's due time, kept in the record
