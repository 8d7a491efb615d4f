"""Retry control on both drivers: retry_on / dont_retry_on, jobpool.Retry and jobpool.Fail,
and the jittered backoff (its schedule is unit-tested in tests/unit/test_retry.py)."""

from __future__ import annotations

import builtins

import pytest
from jobs import AskRetry, GiveUp, Picky, Record

from jobpool import Outcome, Worker, job
from jobpool.errors import JobEncodeError


def runs(path):
    """The lines a job wrote (its messages hold spaces)."""
    with open(path) as f:
        return f.read().splitlines()


def _wait(qm, job_id):
    status = qm.get_job_status(job_id)
    return status["due_at"] - status["updated_at"]


@pytest.mark.parametrize("raises", ["ConnectionResetError", "TimeoutError"])
def test_retry_on_retries_the_listed_exceptions(qm, tmp_path, raises):
    job_id = qm.push(Picky(str(tmp_path / "out"), raises))
    assert Worker(qm).process(qm.pop()) is Outcome.RETRYING
    assert qm.get_job_status(job_id)["status"] == "retrying"


@pytest.mark.parametrize("raises", ["ValueError", "ConnectionRefusedError"])
def test_other_exceptions_and_dont_retry_on_fail_at_once_calling_failed(qm, tmp_path, raises):
    path = str(tmp_path / "out")
    job_id = qm.push(Picky(path, raises))
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    status = qm.get_job_status(job_id)
    assert status["status"] == "failed" and status["attempts"] == 1
    assert status["error"] == f"{raises}: picky"
    assert runs(path) == [f"run:{raises}", f"failed:{raises}:picky"]


def test_retry_with_a_delay_waits_that_long_and_counts_an_attempt(qm, tmp_path):
    path = str(tmp_path / "out")
    job_id = qm.push(AskRetry(path, 0.3))
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.RETRYING
    status = qm.get_job_status(job_id)
    assert status["attempts"] == 1 and status["error"] == "Retry: retry requested in 0.3 s"
    assert _wait(qm, job_id) == pytest.approx(0.3, abs=0.02)  # no jitter on an explicit delay
    delivery = qm.pop(timeout=2)
    assert delivery is not None and delivery.id == job_id
    assert worker.process(delivery) is Outcome.FAILED  # max_tries = 2: still fails for good
    assert runs(path) == ["run", "run", "failed:Retry:retry requested in 0.3 s"]


def test_fail_fails_at_once_with_attempts_left(qm, tmp_path):
    path = str(tmp_path / "out")
    job_id = qm.push(GiveUp(path))
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    status = qm.get_job_status(job_id)
    assert (status["status"], status["attempts"], status["max_tries"]) == ("failed", 1, 5)
    assert status["error"] == "Fail: no such user"
    assert runs(path) == ["run", "failed:Fail:no such user"]


def test_the_default_backoff_is_jittered_around_the_schedule(qm, tmp_path):
    waits = []
    for _ in range(12):
        job = Picky(str(tmp_path / "out"), "TimeoutError")
        job.retry_delay = 10
        job_id = qm.push(job)
        assert Worker(qm).process(qm.pop()) is Outcome.RETRYING
        waits.append(_wait(qm, job_id))
    assert all(5 <= w <= 15.01 for w in waits)
    assert len({round(w, 2) for w in waits}) > 6  # spread, not in lockstep


def test_retry_jitter_off_and_the_cap_give_the_exact_capped_schedule(qm, tmp_path):
    job = Picky(str(tmp_path / "out"), "TimeoutError")
    job.retry_delay, job.retry_jitter, job.retry_backoff_max = 10, False, 4
    job_id = qm.push(job)
    assert Worker(qm).process(qm.pop()) is Outcome.RETRYING
    assert _wait(qm, job_id) == pytest.approx(4, abs=0.02)


def test_wrong_retry_settings_are_refused_at_push(qm, tmp_path):
    job = Record(str(tmp_path / "out"))
    job.retry_backoff_max = -1
    with pytest.raises(JobEncodeError, match="retry_backoff_max must be a number > 0"):
        qm.push(job)
    assert qm.size() == 0


@job(max_tries=3, retry_delay=0.05, retry_on=(ConnectionError,), unique=True, unique_for=60)
def picky_function(path: str, raises: str) -> None:
    with open(path, "a") as f:
        f.write(f"run:{raises}\n")
    raise getattr(builtins, raises)("picky")


def test_job_functions_take_the_same_settings_as_options(qm, tmp_path):
    path = str(tmp_path / "out")
    retried = picky_function.push(path, "ConnectionResetError", manager=qm)
    assert picky_function.push(path, "ConnectionResetError", manager=qm) == retried  # unique
    failed = picky_function.push(path, "ValueError", manager=qm)
    worker = Worker(qm)
    outcomes = {d.id: worker.process(d) for d in (qm.pop(), qm.pop())}
    assert outcomes == {retried: Outcome.RETRYING, failed: Outcome.FAILED}
    assert qm.get_job_status(failed)["attempts"] == 1
