"""Each failed attempt's error and traceback stay in the job's record (`errors`, the last 10),
whether its code raised or its worker died; on both drivers."""

from __future__ import annotations

from jobs import ManyTries, Stamp

from jobpool import Outcome, Worker


def test_every_failed_attempt_keeps_its_error_and_traceback(qm, tmp_path):
    job_id = qm.push(Stamp(str(tmp_path / "stamps"), fail_first=2))  # max_tries 3
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.RETRYING
    assert worker.process(qm.pop(timeout=2)) is Outcome.RETRYING
    assert worker.process(qm.pop(timeout=2)) is Outcome.COMPLETED
    errors = qm.get_job_status(job_id)["errors"]
    assert [e["attempt"] for e in errors] == [1, 2]
    assert [e["error"] for e in errors] == [
        "RuntimeError: attempt 1 fails on purpose",
        "RuntimeError: attempt 2 fails on purpose",
    ]
    assert all("Traceback" in e["traceback"] and e["at"] for e in errors)


def test_a_worker_death_is_an_attempt_error_without_a_traceback(qm, tmp_path):
    job_id = qm.push(Stamp(str(tmp_path / "stamps")))
    qm.driver.session().fetch("default", "w-dead", count=1)  # begun: attempt 1
    qm.driver.requeue_worker("default", "w-dead", "worker killed by signal 9 (SIGKILL)")
    (death,) = qm.get_job_status(job_id)["errors"]
    assert death["attempt"] == 1 and death["error"] == "worker killed by signal 9 (SIGKILL)"
    assert "traceback" not in death or not death["traceback"]


def test_only_the_last_ten_attempts_are_kept(qm):
    job_id = qm.push(ManyTries())  # max_tries 15
    session = qm.driver.session()
    for i in range(12):
        session.fetch("default", f"w{i}", count=1)
        qm.driver.requeue_worker("default", f"w{i}", f"death {i + 1}")
    record = qm.get_job_status(job_id)
    assert record["attempts"] == 12 and record["status"] == "queued"
    assert [e["error"] for e in record["errors"]] == [f"death {i}" for i in range(3, 13)]
    assert [e["attempt"] for e in record["errors"]] == list(range(3, 13))


def test_attempt_times_are_unix_seconds_like_the_records_own(qm, tmp_path):
    job_id = qm.push(Stamp(str(tmp_path / "stamps"), fail_first=1))
    Worker(qm).process(qm.pop())
    record = qm.get_job_status(job_id)
    (entry,) = record["errors"]
    assert abs(entry["at"] - record["updated_at"]) < 5  # seconds, not ms
