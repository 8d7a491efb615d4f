"""cancel() on both drivers: a waiting job never runs; a running one is asked to stop, and ends
`cancelled` without a retry or its failed() hook (its worker's kill under `jobpool start` is in
tests/processes/test_cancel.py)."""

from __future__ import annotations

import logging
import threading

from helpers import wait_until
from jobs import Fail, Record, Sleep, runs

from jobpool import Outcome, Worker

QM_BACKENDS = ("memory", "redis", "cluster")  # see tests/conftest.py


def test_a_queued_job_is_cancelled_and_never_runs(qm, tmp_path):
    path = str(tmp_path / "out")
    job_id = qm.push(Record(path))
    assert qm.cancel(job_id) is True
    status = qm.get_job_status(job_id)
    assert status["status"] == "cancelled" and status["finished_at"] >= status["created_at"]
    assert qm.size() == 0 and qm.pop() is None
    assert Worker(qm).run(burst=True, install_signals=False, keep_lease=False) == 0
    assert runs(path) == []


def test_delayed_and_retrying_jobs_are_cancelled(qm, tmp_path):
    delayed = qm.later(Record(str(tmp_path / "out")), 0.2)
    job = Fail(str(tmp_path / "failed"))
    job.retry_delay = 0.2
    retrying = qm.push(job)
    assert Worker(qm).process(qm.pop()) is Outcome.RETRYING
    assert qm.cancel(delayed) and qm.cancel(retrying)
    assert qm.pop(timeout=0.5) is None  # past both due times: neither comes back
    assert [qm.get_job_status(i)["status"] for i in (delayed, retrying)] == ["cancelled"] * 2
    assert runs(tmp_path / "failed") == []  # no failed() hook for a cancelled job


def test_unknown_finished_and_cancelled_jobs_cannot_be_cancelled(qm, tmp_path):
    assert qm.cancel("default:nope") is False
    assert qm.cancel("no-colon") is False
    done = qm.push(Record(str(tmp_path / "out")))
    Worker(qm).process(qm.pop())
    assert qm.cancel(done) is False
    assert qm.get_job_status(done)["status"] == "completed"
    cancelled = qm.push(Record(str(tmp_path / "out")))
    assert qm.cancel(cancelled) is True
    assert qm.cancel(cancelled) is False


def test_a_running_job_is_asked_to_stop_and_a_failure_then_ends_it_cancelled(qm, tmp_path):
    path = str(tmp_path / "out")
    job_id = qm.push(Fail(path))  # max_tries 3: it would be retried
    delivery = qm.pop()
    assert qm.cancel(job_id) is True
    status = qm.get_job_status(job_id)
    assert status["status"] == "processing" and status["cancel_requested_at"] > 0
    assert Worker(qm).process(delivery) is Outcome.CANCELLED
    status = qm.get_job_status(job_id)
    assert status["status"] == "cancelled" and status["attempts"] == 1
    assert runs(path) == []  # failed() is not called
    assert qm.pop(timeout=0.3) is None and qm.counts()["failed"] == 0


def test_a_running_job_whose_worker_is_killed_for_it_ends_cancelled(qm, tmp_path):
    job_id = qm.push(Record(str(tmp_path / "out")), unique_key="k")
    delivery = qm.pop()
    qm.cancel(job_id)
    assert qm.driver.cancel_requests("default", [job_id, "default:other"]) == {job_id}
    # what the master does once it killed the worker: no attempt counted, nothing handed back
    qm.driver.requeue_worker("default", delivery.worker_id, "cancelled", count_attempt=False)
    status = qm.get_job_status(job_id)
    assert status["status"] == "cancelled" and status["attempts"] == 1
    assert qm.size() == 0 and qm.counts()["in_flight"] == 0
    assert qm.push_unique(Record(str(tmp_path / "out")), unique_key="k")[1] is True


def test_a_job_cancelled_while_claimed_in_a_batch_is_skipped(qm, tmp_path):
    path = str(tmp_path / "out")
    ids = qm.push_many([Record(path, "a"), Record(path, "b"), Record(path, "c")])
    session = qm.driver.session()
    first, second, third = session.fetch("default", "w1", count=3).deliveries
    assert qm.cancel(ids[1]) is True
    assert qm.get_job_status(ids[1])["status"] == "cancelled"
    worker = Worker(qm, worker_id="w1")
    worker.session = session
    assert worker.process(first) is Outcome.COMPLETED
    assert worker._run_one(second, confirm=True) is Outcome.CANCELLED
    assert worker._run_one(third, confirm=True) is Outcome.COMPLETED
    session.flush()
    assert runs(path) == ["a", "c"]
    assert qm.counts()["in_flight"] == 0
    assert [qm.get_job_status(i)["status"] for i in ids] == ["completed", "cancelled", "completed"]


def test_a_worker_checks_for_cancels_between_the_jobs_of_a_batch(qm, tmp_path):
    """A batch job that waited behind a slow one has its start confirmed before it runs."""
    path = tmp_path / "out"
    slow, quick = qm.push_many([Sleep(str(path), 0.5), Record(str(tmp_path / "quick"))])
    worker = Worker(qm, prefetch=8)
    options = {"burst": True, "install_signals": False, "keep_lease": False}
    thread = threading.Thread(target=worker.run, kwargs=options, daemon=True)
    thread.start()
    try:
        wait_until(lambda: path.exists(), 5)  # the slow job runs; the quick one waits its turn
        assert qm.get_job_status(quick)["status"] == "queued" and qm.size() == 0
        assert qm.cancel(quick) is True
    finally:
        worker.stop()
        thread.join(10)
    assert runs(tmp_path / "quick") == []
    assert qm.get_job_status(slow)["status"] == "completed"
    assert qm.get_job_status(quick)["status"] == "cancelled"


def test_a_job_cancelled_after_its_unconfirmed_begin_was_sent_is_not_called_a_lapsed_lease(
    redis_qm, tmp_path, caplog
):
    """A batch's begins are pipelined: a cancel that lands between the claim and the begin's
    reply cannot stop the run, but the log says what happened, and the record stays cancelled."""
    path = str(tmp_path / "out")
    ids = redis_qm.push_many([Record(path, "a"), Record(path, "b")])
    session = redis_qm.driver.session()
    first, second = session.fetch("default", "w1", count=2).deliveries
    worker = Worker(redis_qm, worker_id="w1")
    worker.session = session
    assert worker.process(first) is Outcome.COMPLETED
    assert redis_qm.cancel(ids[1]) is True
    with caplog.at_level(logging.INFO, logger="jobpool"):
        worker._run_one(second, confirm=False)
        session.flush()
    assert redis_qm.get_job_status(ids[1])["status"] == "cancelled"
    assert "lease had lapsed" not in caplog.text
    assert "cancelled just before it began" in caplog.text
