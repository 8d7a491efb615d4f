"""The job knows itself: `jobpool.current_job()` inside handle(), failed() and job functions,
and every log record emitted meanwhile (the user's own loggers included) carries the job's id,
queue and name; on both drivers."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from job_functions import WhoAmI, async_whoami, log_lines, whoami

import jobpool
from jobpool import Outcome, Worker, current_job
from jobpool.log import JobContextFilter, JsonFormatter, TextFormatter


def test_current_job_inside_a_job_function(qm):
    before = time.time()
    job_id = whoami.push(manager=qm)
    assert Worker(qm).process(qm.pop()) is Outcome.COMPLETED
    me = qm.result(job_id)
    assert me["id"] == job_id and me["queue"] == "default" and me["name"] == "whoami"
    assert (me["attempt"], me["max_tries"]) == (1, 2)
    assert me["manager_is_current"] is True
    assert before - 0.01 <= me["enqueued_at"] <= time.time()
    assert me["enqueued_at"] == qm.get_job_status(job_id)["created_at"]


def test_the_attempt_number_counts_retries(qm):
    job_id = whoami.push(fail=True, manager=qm)
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.RETRYING
    assert worker.process(qm.pop(timeout=2)) is Outcome.COMPLETED
    assert qm.result(job_id)["attempt"] == 2


def test_current_job_in_an_async_function(qm):
    job_id = async_whoami.push(manager=qm)
    Worker(qm).process(qm.pop())
    assert qm.result(job_id)["id"] == job_id


def test_current_job_inside_handle_and_failed_of_a_class(qm, tmp_path):
    ok = qm.push(WhoAmI(str(tmp_path / "unused")))
    Worker(qm).process(qm.pop())
    assert qm.result(ok)["name"] == "WhoAmI" and qm.result(ok)["id"] == ok
    path = tmp_path / "hook"
    failed = qm.push(WhoAmI(str(path), fail=True))
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    seen = json.loads(path.read_text())
    assert seen["id"] == failed and seen["attempt"] == 1 and seen["max_tries"] == 1


def test_outside_a_job_current_job_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"current_job\(\) is only available while"):
        current_job()
    assert jobpool.current_job is current_job


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_records_of_user_loggers_carry_the_job(qm, fmt):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        job_id = log_lines.push("hello from the job", manager=qm)
        Worker(qm).process(qm.pop())
        logging.getLogger("userapp.emails").warning("outside any job")
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        mine = next(r for r in records if r["message"] == "hello from the job")
        assert mine["logger"] == "userapp.emails"
        assert (mine["job_id"], mine["queue"], mine["job"]) == (job_id, "default", "log_lines")
        outside = next(r for r in records if r["message"] == "outside any job")
        assert not {"job_id", "queue", "job"} & set(outside)
    else:
        mine = next(line for line in lines if "hello from the job" in line)
        assert mine.endswith(f"job_id={job_id} queue=default job=log_lines")
        outside = next(line for line in lines if "outside any job" in line)
        assert "job_id=" not in outside and "job=" not in outside


def test_a_users_own_formatter_can_name_the_job_fields(qm):
    """JobContextFilter sets `job_id`, `queue` and `job` on each record logged during a job,
    so a formatter of the application's own can use %(job_id)s, %(queue)s and %(job)s."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s [%(job)s %(job_id)s %(queue)s]"))
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        job_id = log_lines.push("mine", manager=qm)
        Worker(qm).process(qm.pop())
    finally:
        root.removeHandler(handler)
    assert f"mine [log_lines {job_id} default]" in stream.getvalue().splitlines()


def test_setup_logging_installs_the_filter():
    from jobpool.log import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info", "json")
        assert any(isinstance(f, JobContextFilter) for f in root.handlers[0].filters)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
