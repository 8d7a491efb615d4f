"""Async jobs: an `async def handle()` (or any awaitable handle() returns) is awaited on the
worker's own event loop, kept for its life, with the outcomes, retries, failed() hook and timeout
of a sync job. Run on both drivers, and under `jobpool start` for the timeout."""

from __future__ import annotations

import warnings

import pytest
from helpers import wait_until
from jobs import AsyncRecord, AsyncSleep, ReturnsAwaitable, runs
from masters import toml

from jobpool import Outcome, QueueManager, Worker


@pytest.fixture(params=["memory", "redis"])
def qm(request: pytest.FixtureRequest) -> QueueManager:
    manager = QueueManager(
        None if request.param == "memory" else request.getfixturevalue("redis_url")
    )
    yield manager
    manager.close()


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


def test_an_async_job_past_its_timeout_is_killed_and_fails(redis_url, tmp_path, master):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    out = tmp_path / "out"
    qm = QueueManager(redis_url)
    job_id = qm.push(AsyncSleep(str(out), 30))
    record = wait_until(
        lambda: (
            (qm.get_job_status(job_id) or {}).get("status") == "failed"
            and qm.get_job_status(job_id)
        ),
        15,
        0.05,
        "the async job to be killed at its timeout",
    )
    assert "timeout after 1 s" in record["error"]
    assert [line.split(":")[0] for line in runs(out)] == ["start"]
    pid = runs(out)[0].split(":")[1]
    m.wait_log(rf"worker default.0 exited: pid {pid}, reason timeout")
    qm.close()
