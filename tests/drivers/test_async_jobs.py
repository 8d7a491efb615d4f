"""Async jobs: an `async def handle()` (or any awaitable handle() returns) is awaited on the
worker's own event loop, kept for its life, with the outcomes, retries and failed() hook of a sync
job. Run on both drivers; the timeout, under `jobpool start`, is in
tests/processes/test_async_timeout.py."""

from __future__ import annotations

import warnings

from helpers import wait_until
from jobs import AsyncRecord, ReturnsAwaitable, runs

from jobpool import Outcome, Worker


def test_an_async_handle_is_awaited_before_the_job_counts_as_completed(qm, tmp_path):
    out = tmp_path / "out"
    job_id = qm.push(AsyncRecord(str(out)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail the test
        assert Worker(qm).process(qm.pop()) is Outcome.COMPLETED
    assert [line.split(":")[0] for line in runs(out)] == ["loop"]
    assert qm.get_job_status(job_id)["status"] == "completed"


def test_async_jobs_of_one_worker_share_its_event_loop(qm, tmp_path):
    out = tmp_path / "out"
    for _ in range(3):
        qm.push(AsyncRecord(str(out)))
    worker = Worker(qm)
    for _ in range(3):
        worker.process(qm.pop())
    loops = {line.split(":")[1] for line in runs(out)}
    assert len(runs(out)) == 3 and len(loops) == 1


def test_an_async_failure_retries_then_awaits_the_async_failed_hook(qm, tmp_path):
    out = tmp_path / "out"
    job_id = qm.push(AsyncRecord(str(out), fail=True))
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.RETRYING
    record = qm.get_job_status(job_id)
    assert record["status"] == "retrying" and record["error"] == "RuntimeError: async boom"
    assert "RuntimeError: async boom" in record["traceback"]
    delivery = wait_until(lambda: qm.pop(), 5, 0.02, "the retry to be due")
    assert worker.process(delivery) is Outcome.FAILED
    last = out.read_text().splitlines()[-1]
    assert last == "failed:RuntimeError:async boom"  # the hook ran, awaited, with the error
    assert qm.get_job_status(job_id)["status"] == "failed"


def test_any_awaitable_returned_by_handle_is_awaited(qm, tmp_path):
    out = tmp_path / "out"
    qm.push(ReturnsAwaitable(str(out)))
    assert Worker(qm).process(qm.pop()) is Outcome.COMPLETED
    assert runs(out) == ["awaited"]
