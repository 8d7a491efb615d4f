"""Pausing a queue: its workers claim nothing (pushes are still stored) until it is resumed;
on both drivers, for one-job and threaded workers."""

from __future__ import annotations

import threading
import time

import pytest
from jobs import Record, runs

from jobpool import Worker
from jobpool.worker.threaded import ThreadedWorker


def test_pause_and_resume_report_whether_they_changed_anything(qm):
    assert qm.is_paused() is False
    assert qm.pause() is True and qm.pause() is False
    assert qm.is_paused() is True and qm.is_paused("other") is False
    assert qm.resume() is True and qm.resume() is False


@pytest.mark.parametrize("threads", [1, 4], ids=["one_job", "threaded"])
def test_a_paused_queue_keeps_its_jobs_until_it_is_resumed(qm, tmp_path, threads):
    path = tmp_path / "out"
    qm.pause()
    ids = qm.push_many([Record(str(path), str(i)) for i in range(3)])
    worker = Worker(qm) if threads == 1 else ThreadedWorker(qm, concurrency=threads)
    options = {"install_signals": False, "keep_lease": False}
    thread = threading.Thread(target=worker.run, kwargs=options, daemon=True)
    thread.start()
    try:
        time.sleep(1.5)  # more than a pause tick: the worker looked at least once
        assert runs(path) == []
        assert {qm.get_job_status(i)["status"] for i in ids} == {"queued"}
        assert qm.counts()["ready"] == 3
        qm.resume()
        deadline = time.monotonic() + 5
        while len(runs(path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(runs(path)) == ["0", "1", "2"]
    finally:
        worker.stop()
        thread.join(10)
    assert {qm.get_job_status(i)["status"] for i in ids} == {"completed"}


def test_other_queues_are_not_paused(qm, tmp_path):
    path = tmp_path / "out"
    qm.pause("default")
    job_id = qm.push(Record(str(path)), "other")
    worker = Worker(qm, "other")
    worker.run(burst=True, install_signals=False, keep_lease=False)
    assert qm.get_job_status(job_id)["status"] == "completed"
