"""Many jobs per worker (`concurrency` above 1), in-process on both drivers: sync jobs on
threads, async jobs as tasks on one event loop; each job knows itself; a timeout or a cancel
stops one job and no other; a fetch never takes back the jobs a worker runs."""

from __future__ import annotations

import logging
import threading
import time

from job_functions import log_after, whoami
from jobs import AsyncOverlap, AsyncSleep, Linger, Overlap, Record, Stuck, runs, windows

from jobpool.log import JobContextFilter
from jobpool.worker.threaded import ThreadedWorker


def run_burst(qm, concurrency: int, **kw) -> ThreadedWorker:
    worker = ThreadedWorker(qm, concurrency=concurrency, **kw)
    worker.run(burst=True, install_signals=False, keep_lease=False)
    return worker


def overlapping(rows) -> bool:
    """Every job started before any of them ended."""
    return max(r[2] for r in rows) < min(r[3] for r in rows)


def test_eight_sleeping_jobs_run_at_once_on_eight_threads(qm, tmp_path):
    path = tmp_path / "windows"
    ids = qm.push_many([Overlap(str(path), 0.4) for _ in range(8)])
    started = time.monotonic()
    worker = run_burst(qm, 8)
    assert time.monotonic() - started < 2.5  # one at a time would take 3.2 s
    rows = windows(path)
    assert len(rows) == 8 and overlapping(rows), rows
    assert len({r[1] for r in rows}) == 8  # eight threads
    assert worker.jobs_done == 8
    assert {qm.get_job_status(i)["status"] for i in ids} == {"completed"}


def test_async_jobs_run_at_once_as_tasks_on_one_loop(qm, tmp_path):
    path = tmp_path / "windows"
    qm.push_many([AsyncOverlap(str(path), 0.4) for _ in range(6)])
    run_burst(qm, 6)
    rows = windows(path)
    assert len(rows) == 6 and overlapping(rows), rows
    assert len({r[1] for r in rows}) == 1  # the tasks share the event loop's thread


def test_current_job_is_each_threads_own(qm):
    ids = [whoami.push(manager=qm) for _ in range(16)]
    run_burst(qm, 8)
    for job_id in ids:
        assert qm.result(job_id)["id"] == job_id


def test_an_async_job_past_its_timeout_is_cancelled_alone(qm, tmp_path):
    slow = qm.push(AsyncSleep(str(tmp_path / "slow"), 30))  # timeout 1, max_tries 1
    path = tmp_path / "windows"
    others = qm.push_many([AsyncOverlap(str(path), 1.5) for _ in range(3)])
    worker = run_burst(qm, 4)
    record = qm.get_job_status(slow)
    assert record["status"] == "failed" and record["error"].startswith("JobTimeoutError")
    assert "done" not in " ".join(runs(tmp_path / "slow"))
    assert {qm.get_job_status(i)["status"] for i in others} == {"completed"}
    assert worker.stopped_because is None  # the worker serves on


def test_a_sync_job_past_its_timeout_counts_an_attempt_and_stops_the_worker(qm, tmp_path):
    stuck_path = tmp_path / "stuck"
    stuck = qm.push(Stuck(str(stuck_path), 2.5))  # timeout 1, max_tries 2
    path = tmp_path / "windows"
    others = qm.push_many([Overlap(str(path), 1.5) for _ in range(3)])
    worker = run_burst(qm, 4, graceful_timeout=5)
    assert worker.stopped_because == "timeout"
    record = qm.get_job_status(stuck)
    assert record["attempts"] == 1 and record["status"] in ("retrying", "queued")
    assert record["error"] == "JobTimeoutError: timeout after 1 s"
    # The others finished before the worker left: none was cut short.
    assert {qm.get_job_status(i)["status"] for i in others} == {"completed"}
    assert [qm.get_job_status(i)["attempts"] for i in others] == [1, 1, 1]


def test_a_sync_job_out_of_attempts_by_timeouts_fails_with_its_hook(qm, tmp_path):
    stuck_path = tmp_path / "stuck"
    stuck = qm.push(Stuck(str(stuck_path), 1.6))
    run_burst(qm, 2)
    run_burst(qm, 2)
    record = qm.get_job_status(stuck)
    assert (record["status"], record["attempts"]) == ("failed", 2)
    wait = time.monotonic() + 5
    while "failed:JobTimeoutError" not in runs(stuck_path) and time.monotonic() < wait:
        time.sleep(0.05)
    assert "failed:JobTimeoutError" in runs(stuck_path)


def test_cancelling_a_running_sync_job_records_it_cancelled_and_lets_the_others_finish(
    qm, tmp_path
):
    path = tmp_path / "linger"
    target = qm.push(Linger(str(path), 2.5))
    others = qm.push_many([Overlap(str(tmp_path / "windows"), 1.5) for _ in range(2)])
    worker = ThreadedWorker(qm, concurrency=3)
    thread = threading.Thread(
        target=worker.run, kwargs={"burst": True, "install_signals": False, "keep_lease": False}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not runs(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert qm.cancel(target)
    thread.join(10)
    assert not thread.is_alive()
    record = qm.get_job_status(target)
    assert record["status"] == "cancelled" and record["attempts"] == 1
    assert worker.stopped_because == "cancel"
    assert {qm.get_job_status(i)["status"] for i in others} == {"completed"}
    assert not any(line.startswith("failed:") for line in runs(path))  # no failed() hook


def test_cancelling_a_running_async_job_cancels_its_task_only(qm, tmp_path):
    path = tmp_path / "windows"
    target = qm.push(AsyncOverlap(str(path), 30))
    others = qm.push_many([AsyncOverlap(str(path), 1.5) for _ in range(2)])
    worker = ThreadedWorker(qm, concurrency=3)
    thread = threading.Thread(
        target=worker.run, kwargs={"burst": True, "install_signals": False, "keep_lease": False}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while qm.get_job_status(target)["status"] != "processing" and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert qm.cancel(target)
    thread.join(10)
    assert not thread.is_alive()
    assert qm.get_job_status(target)["status"] == "cancelled"
    assert worker.stopped_because is None
    assert {qm.get_job_status(i)["status"] for i in others} == {"completed"}


def test_a_fetch_leaves_the_jobs_a_worker_holds_and_hands_back_the_rest(qm):
    first, second, third = (qm.push(Overlap("/dev/null", 0)) for _ in range(3))
    session = qm.driver.session()
    (a,) = session.fetch("default", "w1", count=1).deliveries
    assert a.id == first
    # A worker running `first` fetches again: it keeps `first`, and claims the next one.
    (b,) = session.fetch("default", "w1", count=1, held=[first]).deliveries
    assert b.id == second
    assert qm.get_job_status(first)["status"] == "processing"
    # A one-job worker fetches with empty hands: what it held goes back, first in line.
    again = session.fetch("default", "w1", count=1).deliveries
    assert [d.id for d in again] == [first]
    assert third not in [d.id for d in again]


def test_log_lines_carry_the_job_of_their_own_thread(qm):
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    handler.addFilter(JobContextFilter())
    logger = logging.getLogger("userapp.emails")
    logger.addHandler(handler)
    try:
        ids = {log_after.push(f"message {i}", 0.2, manager=qm): f"message {i}" for i in range(8)}
        run_burst(qm, 8)
    finally:
        logger.removeHandler(handler)
    assert len(seen) == 8
    assert {r.getMessage(): r.job_id for r in seen} == {m: i for i, m in ids.items()}
    assert {r.job for r in seen} == {"log_after"}


def test_many_short_jobs_each_run_once_and_are_acknowledged_before_their_end_is_told(
    qm, tmp_path, caplog
):
    # A thread that ends a job and finds the next already claimed sends the ack and the next
    # begin together. A job its claim began needs no begin: its predecessor's ack must still
    # reach Redis before the main thread stops naming it held, or a claim hands it back and
    # it runs twice.
    path = tmp_path / "runs"
    tags = [f"job{i}" for i in range(400)]
    ids = qm.push_many([Record(str(path), tag) for tag in tags])
    with caplog.at_level(logging.WARNING, logger="jobpool"):
        worker = run_burst(qm, 8)
    assert sorted(runs(path)) == sorted(tags)  # each exactly once
    assert worker.jobs_done == 400
    assert {qm.get_job_status(i)["status"] for i in ids} == {"completed"}
    assert not [r for r in caplog.records if "lapsed" in r.getMessage()]
