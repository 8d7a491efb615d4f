"""Functions as jobs (`@job`): pushed, decoded and run through the class machinery, on both
drivers. The same functions run under `jobpool start` in tests/processes/test_job_api.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from job_functions import add, async_add, boom, flaky, push_follow_up, send_email

import jobpool
from jobpool import Job, Outcome, QueueManager, Worker, job
from jobpool.context import configure_default
from jobpool.errors import JobEncodeError
from jobpool.functions import FunctionJob, JobFunction
from jobpool.job import registered


@pytest.fixture(autouse=True)
def no_default_manager():
    """Each test starts without a configured manager, and leaves none behind."""
    configure_default(None)
    yield
    configure_default(None)


def run_next(qm: QueueManager, queue: str | None = None) -> Outcome:
    delivery = qm.pop(queue)
    assert delivery is not None
    return Worker(qm, queue).process(delivery)


def test_a_plain_call_runs_the_function_inline():
    assert add(2, 3) == 5
    assert send_email("ada@x", subject="Hi") == "sent 'Hi' to ada@x"
    assert asyncio.run(async_add(1, 2)) == 3
    assert add.__name__ == "add" and add.__wrapped__(1, 1) == 2


def test_the_decorator_registers_a_job_class_per_function():
    assert isinstance(add, JobFunction)
    assert registered("job_functions:add") is add.job_class
    assert issubclass(add.job_class, FunctionJob) and issubclass(add.job_class, Job)
    assert registered("tests.send_email") is send_email.job_class  # name= picks it
    cls = send_email.job_class
    assert (cls.queue, cls.max_tries, cls.retry_delay, cls.timeout) == ("emails", 5, 10, 30)
    assert (add.job_class.max_tries, add.job_class.queue) == (3, None)  # the class defaults


def test_push_stores_the_arguments_and_the_worker_returns_the_result(qm):
    job_id = add.push(2, 3, manager=qm)
    record = qm.get_job_status(job_id)
    assert record["status"] == "queued" and record["job"] == "add"
    assert record["queue"] == "default" and record["max_tries"] == 3
    assert run_next(qm) is Outcome.COMPLETED
    assert qm.get_job_status(job_id)["result"] == 5
    assert qm.result(job_id) == 5


def test_keyword_arguments_and_the_queue_of_the_decorator(qm):
    job_id = send_email.push("ada@x", subject="Welcome", urgent=True, manager=qm)
    assert job_id.startswith("emails:")
    assert qm.get_job_status(job_id)["max_tries"] == 5
    assert run_next(qm, "emails") is Outcome.COMPLETED
    assert qm.result(job_id) == "sent 'Welcome' to ada@x (urgent)"


def test_the_body_is_the_class_payload_with_args_and_kwargs(qm):
    add.push(1, b=2, manager=qm)
    body = json.loads(qm.pop().body)
    assert body == {"job": "job_functions:add", "attrs": {"args": [1], "kwargs": {"b": 2}}}


def test_an_async_function_is_awaited_by_the_worker(qm):
    job_id = async_add.push(20, 22, manager=qm)
    assert run_next(qm) is Outcome.COMPLETED
    assert qm.result(job_id) == 42


def test_later_delays_a_function_job(qm):
    job_id = add.later(0.2, 1, 1, manager=qm)
    record = qm.get_job_status(job_id)
    assert record["status"] == "delayed"
    assert 0.15 < record["due_at"] - record["created_at"] <= 0.25
    assert qm.pop() is None
    delivery = qm.pop(timeout=2)
    assert delivery is not None and delivery.id == job_id
    assert Worker(qm).process(delivery) is Outcome.COMPLETED
    assert qm.result(job_id) == 2


def test_later_takes_a_timedelta(qm):
    job_id = add.later(dt.timedelta(seconds=30), 1, 1, manager=qm)
    assert qm.get_job_status(job_id)["status"] == "delayed"


def test_push_many_takes_tuples_dicts_and_prepared_jobs(qm):
    ids = add.push_many([(1, 2), {"a": 3, "b": 4}, [5, 6], add.job(7, b=8)], manager=qm)
    assert len(ids) == 4 and qm.size() == 4
    worker = Worker(qm)
    for _ in ids:
        assert worker.process(qm.pop()) is Outcome.COMPLETED
    assert [qm.result(i) for i in ids] == [3, 7, 11, 15]


def test_push_many_refuses_other_items_before_storing_any(qm):
    with pytest.raises(JobEncodeError, match=r"item 1 .*tuple of positional arguments"):
        add.push_many([(1, 2), 3], manager=qm)
    with pytest.raises(JobEncodeError, match="another function"):
        add.push_many([send_email.job("x")], manager=qm)
    assert qm.size() == 0 and qm.size("emails") == 0


def test_a_job_instance_goes_through_the_managers_own_methods(qm):
    job_id = qm.push(add.job(2, 2), queue="other")
    assert job_id.startswith("other:")
    assert run_next(qm, "other") is Outcome.COMPLETED
    assert qm.result(job_id) == 4


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda qm: add.push(1, dt.datetime.now(), manager=qm), r"add: argument 'b' .*datetime"),
        (lambda qm: add.push(1, b={1, 2}, manager=qm), r"add: argument 'b' .*set"),
        (lambda qm: add.push(float("nan"), 1, manager=qm), r"argument 'a' .*non-finite"),
        (lambda qm: add.push(1, manager=qm), r"add\(\): missing a required argument: 'b'"),
        (lambda qm: add.push(1, 2, 3, manager=qm), r"add\(\): too many positional arguments"),
        (lambda qm: add.push(1, 2, c=2, manager=qm), r"add\(\): got an unexpected keyword"),
    ],
)
def test_bad_arguments_are_refused_at_push_naming_the_argument(qm, call, message):
    with pytest.raises(JobEncodeError, match=message):
        call(qm)
    assert qm.size() == 0


def test_a_failing_function_retries_then_fails_like_a_class(qm, tmp_path):
    path = str(tmp_path / "runs")
    job_id = flaky.push(path, 5, manager=qm)  # max_tries=2: never gets there
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.RETRYING
    record = qm.get_job_status(job_id)
    assert record["error"] == "RuntimeError: attempt 1 fails on purpose"
    delivery = qm.pop(timeout=2)
    assert worker.process(delivery) is Outcome.FAILED
    assert qm.get_job_status(job_id)["attempts"] == 2


def test_a_function_that_succeeds_on_retry_stores_its_result(qm, tmp_path):
    job_id = flaky.push(str(tmp_path / "runs"), 1, manager=qm)
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.RETRYING
    assert worker.process(qm.pop(timeout=2)) is Outcome.COMPLETED
    assert qm.result(job_id) == 2


def test_an_unknown_function_name_fails_the_job_clearly(qm):
    job_id = add.push(1, 2, manager=qm)
    d = qm.pop()
    body = b'{"job":"job_functions:gone","attrs":{"args":[1,2],"kwargs":{}}}'
    forged = type(d)(d.id, d.queue, body, d.record, d.worker_id)
    assert Worker(qm).process(forged) is Outcome.FAILED
    error = qm.get_job_status(job_id)["error"]
    assert "unknown job class 'job_functions:gone'" in error and "@job function" in error


def test_the_base_of_function_jobs_is_not_a_job_a_payload_can_name():
    assert registered(f"{FunctionJob.__module__}:{FunctionJob.__qualname__}") is None


def test_push_without_a_manager_says_how_to_set_one():
    with pytest.raises(RuntimeError, match=r"jobpool\.configure"):
        add.push(1, 2)


def test_configure_with_a_manager_makes_it_current(qm):
    assert jobpool.configure(qm) is qm
    assert jobpool.current_manager() is qm
    job_id = add.push(1, 2)
    assert qm.get_job_status(job_id)["status"] == "queued"


def test_make_current_and_an_explicit_manager_wins(qm):
    other = QueueManager(None)
    assert other.make_current() is other
    job_id = add.push(1, 2, manager=qm)
    assert qm.get_job_status(job_id) is not None and other.get_job_status(job_id) is None


def test_configure_reads_a_config_file(tmp_path, redis_url):
    config = tmp_path / "jobpool.toml"
    config.write_text(f'default_queue = "fromfile"\n[redis]\nurl = "{redis_url}"\n')
    qm = jobpool.configure(config)
    try:
        assert jobpool.current_manager() is qm
        assert add.push(1, 2).startswith("fromfile:")
    finally:
        qm.close()


def test_inside_a_job_the_workers_manager_is_current(qm):
    other = QueueManager(None)
    other.make_current()  # the process default loses to the worker's manager
    job_id = push_follow_up.push(3, 4, manager=qm)
    assert run_next(qm) is Outcome.COMPLETED
    follow_up = qm.result(job_id)
    assert qm.get_job_status(follow_up)["status"] == "queued"
    assert run_next(qm) is Outcome.COMPLETED
    assert qm.result(follow_up) == 7


def test_a_function_with_a_parameter_called_manager_is_refused():
    with pytest.raises(TypeError, match="parameter 'manager', which is reserved"):

        @job
        def takes_manager(manager: str) -> None: ...


def test_unknown_decorator_options_are_refused():
    with pytest.raises(TypeError, match="max_trie"):

        @job(max_trie=3)
        def typo() -> None: ...


def test_bad_decorator_settings_are_refused_at_push(qm):
    @job(max_tries=0)
    def never() -> None: ...

    with pytest.raises(JobEncodeError, match="max_tries must be an int >= 1"):
        never.push(manager=qm)


def test_a_function_of_main_is_refused_on_redis(redis_qm):
    @job(name="__main__:script_function")
    def script_function() -> None: ...

    with pytest.raises(JobEncodeError, match="__main__"):
        script_function.push(manager=redis_qm)


def test_decorator_settings_of_the_retry_path(qm):
    job_id = boom.push("bad input", manager=qm)  # max_tries=1
    assert run_next(qm) is Outcome.FAILED
    assert qm.get_job_status(job_id)["error"] == "ValueError: bad input"
