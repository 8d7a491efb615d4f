"""A job class's own `rate_limit` and `max_running` (or a @job function's), decided at the
claim on both drivers: a job over its class's limit goes back as delayed to when the limit
allows, no attempt counted, and the claim takes other work meanwhile."""

from __future__ import annotations

import pytest
from jobs import OneAtATime, Record, Throttled

from jobpool import Job, JobEncodeError


def claim_all(session, worker: str) -> list[str]:
    return [d.id for d in claim(session, worker)]


def claim(session, worker: str):
    return session.fetch("default", worker, count=10).deliveries


def test_a_class_rate_limit_lets_a_burst_start_then_delays_the_rest(qm):
    ids = qm.push_many([Throttled() for _ in range(5)])
    session = qm.driver.session()
    started = []
    for i in range(3):
        got = claim_all(session, f"w{i}")
        assert len(got) == 1  # a limited job is claimed alone, begun by its claim
        started += got
    assert started == ids[:3]
    assert claim_all(session, "w3") == []  # both others over the limit: set aside
    for job_id in ids[3:]:
        record = qm.get_job_status(job_id)
        assert record["status"] == "delayed" and record["attempts"] == 0
        assert 0 < record["due_at"] - qm.get_job_status(ids[0])["started_at"] <= 1.0 + 0.01


def test_max_running_of_a_class_sets_its_job_aside_and_claims_the_others(qm, tmp_path):
    first, second = qm.push_many([OneAtATime(), OneAtATime()])
    other = qm.push(Record(str(tmp_path / "out")))
    one, two = qm.driver.session(), qm.driver.session()
    (running,) = claim(one, "w1")
    assert running.id == first
    assert claim_all(two, "w2") == [other]  # the second OneAtATime waits, uncounted
    record = qm.get_job_status(second)
    assert record["status"] == "delayed" and record["attempts"] == 0
    one.complete(running)
    one.flush()
    assert qm.get_job_status(first)["status"] == "completed"


def test_a_job_function_takes_limits_as_options(qm):
    from job_functions import throttled_fn

    job_id = throttled_fn.push(manager=qm)
    name, *limits = qm.get_job_status(job_id)["limit"]
    assert name.endswith("throttled_fn") and limits == [2, 1000, 0]


def test_a_wrong_class_limit_is_refused_at_push_naming_the_class(qm):
    class Bad(Job):
        rate_limit = "fast"

        def handle(self) -> None:
            pass

    with pytest.raises(JobEncodeError, match=r"Bad\.rate_limit"):
        qm.push(Bad())
