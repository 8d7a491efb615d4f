"""Results: what handle() or a job function returns is stored in the job's record, and
`qm.result(id, timeout)` waits for it (or raises JobFailed, TimeoutError), on both drivers."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import wait_until
from job_functions import Multiply, add, boom, sized, unstorable
from jobs import Record, Sleep

from jobpool import JobFailed, Outcome, QueueManager, Worker
from jobpool.errors import JobNotFoundError

QM_BACKENDS = ("memory", "redis", "cluster")  # see tests/conftest.py


def run_next(qm) -> Outcome:
    return Worker(qm).process(qm.pop())


def test_a_class_result_is_stored_in_the_record(qm):
    job_id = qm.push(Multiply(6, 7))
    assert run_next(qm) is Outcome.COMPLETED
    record = qm.get_job_status(job_id)
    assert record["status"] == "completed" and record["result"] == 42
    assert qm.result(job_id) == 42


def test_a_job_without_a_return_value_has_no_result_field(qm, tmp_path):
    job_id = qm.push(Record(str(tmp_path / "out")))
    run_next(qm)
    assert "result" not in qm.get_job_status(job_id)
    assert qm.result(job_id) is None


@pytest.mark.parametrize(
    "value",
    [[], {}, [1, [2, [3]]], {"a": {"b": []}}, 0.1 + 0.2, 2**62 + 1, "é\u2603", True, ""],
)
def test_results_keep_their_exact_json_value(qm, value):
    class Echo(Multiply):
        def handle(self):  # type: ignore[override]
            return value

    job_id = qm.push(Echo(0, 0))
    assert run_next(qm) is Outcome.COMPLETED
    assert qm.result(job_id) == value and type(qm.result(job_id)) is type(value)


def test_a_result_that_is_not_json_fails_the_attempt_clearly(qm):
    job_id = unstorable.push(manager=qm)  # max_tries=1
    assert run_next(qm) is Outcome.FAILED
    record = qm.get_job_status(job_id)
    assert record["error"].startswith("ResultError: unstorable returned object")
    assert "cannot be stored as JSON" in record["error"]
    assert "result" not in record


def test_a_result_above_max_result_fails_the_attempt(qm):
    qm.max_result = 100
    small, big = sized.push(90, manager=qm), sized.push(200, manager=qm)
    assert run_next(qm) is Outcome.COMPLETED
    assert run_next(qm) is Outcome.FAILED
    assert qm.result(small) == "x" * 90
    error = qm.get_job_status(big)["error"]
    assert error.startswith("ResultError: sized returned 202 bytes of JSON")
    assert "above max_result (100 bytes)" in error


def test_a_result_failure_is_retried_like_any_failure(qm):
    class Unstorable(Multiply):
        max_tries = 2
        retry_delay = 0

        def handle(self):  # type: ignore[override]
            return {1, 2}

    job_id = qm.push(Unstorable(1, 1))
    assert run_next(qm) is Outcome.RETRYING
    assert qm.get_job_status(job_id)["error"].startswith("ResultError:")


def test_result_of_a_failed_job_raises_job_failed_with_the_error_and_traceback(qm):
    job_id = boom.push("bad input", manager=qm)
    run_next(qm)
    with pytest.raises(JobFailed) as caught:
        qm.result(job_id)
    failed = caught.value
    assert failed.job_id == job_id
    assert failed.error == "ValueError: bad input"
    assert "Traceback" in failed.traceback and "bad input" in failed.traceback
    assert failed.record["status"] == "failed"
    assert str(failed) == f"job {job_id} failed: ValueError: bad input"


def test_result_of_an_unknown_id_raises_a_clear_error(qm):
    with pytest.raises(JobNotFoundError, match="no job default:nope"):
        qm.result("default:nope")
    with pytest.raises(JobNotFoundError, match="not a jobpool job id"):
        qm.result("no-colon")
    with pytest.raises(LookupError):  # JobNotFoundError is a LookupError
        qm.result("default:nope", timeout=1)


@pytest.mark.timing
def test_result_of_an_unfinished_job_times_out(qm):
    job_id = add.push(1, 2, manager=qm)
    with pytest.raises(TimeoutError, match=f"job {job_id} is still queued after 0s"):
        qm.result(job_id, timeout=0)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="still queued after 0.3s"):
        qm.result(job_id, timeout=0.3)
    assert 0.25 < time.monotonic() - started < 2


def _finish_later(qm, seconds: float) -> threading.Thread:
    def work() -> None:
        time.sleep(seconds)  # the waiter must be blocked by then
        Worker(qm).process(qm.pop(timeout=5))

    thread = threading.Thread(target=work)
    thread.start()
    return thread


@pytest.mark.timing
def test_result_waits_for_the_job_and_wakes_when_it_completes(qm):
    job_id = add.push(2, 2, manager=qm)
    thread = _finish_later(qm, 0.3)
    started = time.monotonic()
    assert qm.result(job_id, timeout=10) == 4
    took = time.monotonic() - started
    thread.join()
    assert 0.25 < took < 0.9  # woken by the ack, not by the 1 s re-check
    assert "notify" not in qm.get_job_status(job_id)  # the waiters' channel is internal


@pytest.mark.timing
def test_result_wakes_when_the_job_fails_for_good(qm):
    job_id = boom.push("late", manager=qm)
    thread = _finish_later(qm, 0.3)
    started = time.monotonic()
    with pytest.raises(JobFailed, match="ValueError: late"):
        qm.result(job_id, timeout=10)
    thread.join()
    assert time.monotonic() - started < 0.9


def test_result_without_timeout_waits_as_long_as_it_takes(qm):
    job_id = add.push(5, 5, manager=qm)
    thread = _finish_later(qm, 0.2)
    assert qm.result(job_id) == 10
    thread.join()


@pytest.mark.timing
def test_several_waiters_all_wake(qm):
    job_id = add.push(1, 1, manager=qm)
    got: list[object] = []
    waiters = [
        threading.Thread(target=lambda: got.append(qm.result(job_id, timeout=10))) for _ in range(3)
    ]
    for w in waiters:
        w.start()
    time.sleep(0.3)  # all three are waiting
    started = time.monotonic()
    Worker(qm).process(qm.pop())
    for w in waiters:
        w.join()
    assert got == [2, 2, 2]
    assert time.monotonic() - started < 0.9


def test_a_retried_attempt_does_not_end_the_wait(qm, tmp_path):
    from job_functions import flaky

    job_id = flaky.push(str(tmp_path / "runs"), 1, manager=qm)
    worker = Worker(qm)

    def work() -> None:
        time.sleep(0.2)
        worker.process(qm.pop())  # fails, retried 50 ms later
        worker.process(qm.pop(timeout=5))

    thread = threading.Thread(target=work)
    thread.start()
    assert qm.result(job_id, timeout=10) == 2
    thread.join()


def test_a_deleted_job_ends_the_wait_as_unknown(qm, tmp_path):
    job_id = qm.push(Sleep(str(tmp_path / "out"), 0))

    def delete() -> None:
        time.sleep(0.2)
        qm.delete(job_id)

    thread = threading.Thread(target=delete)
    thread.start()
    with pytest.raises(JobNotFoundError):
        qm.result(job_id, timeout=10)
    thread.join()


@pytest.mark.parametrize("driver", ["memory", "redis"])
def test_the_result_is_kept_as_long_as_the_record(request, driver):
    url = None if driver == "memory" else request.getfixturevalue("redis_url")
    with QueueManager(url, completed_ttl=0.5) as qm:
        job_id = add.push(1, 2, manager=qm)
        run_next(qm)
        record = qm.get_job_status(job_id)
        assert record["result"] == 3 and "notify" not in record  # the channel is internal
        assert qm.result(job_id) == 3
        wait_until(lambda: qm.get_job_status(job_id) is None, 5, 0.05, "the record to expire")
        with pytest.raises(JobNotFoundError):
            qm.result(job_id)
