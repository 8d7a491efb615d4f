"""The job API through `jobpool start` on a real redis-server: `@job` functions (sync and async)
and classes pushed by a producer, their results read back with `qm.result()` (and `aresult()`
under a running loop), failures as JobFailed, `current_job()` in the worker, and the job's id,
queue and name on the lines its own logger writes to the master's log."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from job_functions import (
    Multiply,
    add,
    async_add,
    async_whoami,
    boom,
    log_lines,
    push_follow_up,
    send_email,
    sized,
    whoami,
)
from masters import toml

import jobpool
from jobpool import JobFailed, QueueManager
from jobpool.context import configure_default

IMPORTS = ("jobs", "job_functions")


@pytest.fixture
def producer(redis_url):
    """The test's producer, made current as an application would with jobpool.configure()."""
    qm = jobpool.configure(QueueManager(redis_url))
    yield qm
    configure_default(None)
    qm.close()


def test_function_and_class_jobs_return_results_through_jobpool_start(master, redis_url, producer):
    queues = {"default": {"workers": 2}, "emails": {"workers": 1}}
    master(toml(redis_url, imports=IMPORTS, queues=queues), workers=3)
    ids = {
        "add": add.push(2, 3),
        "async": async_add.push(40, 2),
        "email": send_email.push("ada@example.com", subject="Welcome"),
        "class": producer.push(Multiply(6, 7)),
        "later": add.later(0.2, 1, 1),
    }
    many = add.push_many([(1, 1), {"a": 2, "b": 2}])
    assert ids["email"].startswith("emails:")
    assert producer.result(ids["add"], timeout=15) == 5
    assert producer.result(ids["async"], timeout=15) == 42
    assert producer.result(ids["email"], timeout=15) == "sent 'Welcome' to ada@example.com"
    assert producer.result(ids["class"], timeout=15) == 42
    assert producer.result(ids["later"], timeout=15) == 2
    assert [producer.result(i, timeout=15) for i in many] == [2, 4]


def test_failures_and_unstorable_results_through_jobpool_start(master, redis_url, producer):
    config = toml(redis_url, imports=IMPORTS).replace(
        "[redis]", '[jobs]\nmax_result = "1KiB"\n[redis]'
    )
    master(config, workers=2)
    failed = boom.push("from a worker process")
    too_big = sized.push(5000)
    with pytest.raises(JobFailed) as caught:
        producer.result(failed, timeout=15)
    assert caught.value.error == "ValueError: from a worker process"
    assert "job_functions.py" in caught.value.traceback
    with pytest.raises(JobFailed, match=r"above max_result \(1024 bytes\)"):
        producer.result(too_big, timeout=15)
    with pytest.raises(TimeoutError):
        producer.result(add.later(60, 1, 1), timeout=0.2)


@pytest.mark.timing
def test_a_waiting_result_wakes_as_soon_as_the_worker_finishes(master, redis_url, producer):
    master(toml(redis_url, imports=IMPORTS), workers=2)
    producer.result(add.push(0, 0), timeout=15)  # the workers are warm
    job_id = add.later(0.5, 1, 2)
    started = time.monotonic()
    assert producer.result(job_id, timeout=15) == 3
    assert time.monotonic() - started < 1.4  # due at 0.5 s; the re-check would be later


def test_current_job_and_follow_ups_in_worker_processes(master, redis_url, producer):
    master(toml(redis_url, imports=IMPORTS), workers=2)
    me = producer.result(whoami.push(fail=True), timeout=15)
    assert me["attempt"] == 2 and me["max_tries"] == 2 and me["manager_is_current"]
    assert me["queue"] == "default" and me["name"] == "whoami"
    assert producer.result(async_whoami.push(), timeout=15)["name"] == "async_whoami"
    follow_up = producer.result(push_follow_up.push(3, 4), timeout=15)
    assert producer.result(follow_up, timeout=15) == 7


def test_async_producer_methods_against_jobpool_start(master, redis_url, producer):
    master(toml(redis_url, imports=IMPORTS), workers=2)

    async def web_request() -> tuple[object, object]:
        try:
            a = await add.apush(20, 22)
            b = await producer.apush(Multiply(2, 3))
            return await producer.aresult(a, timeout=15), await producer.aresult(b, timeout=15)
        finally:
            await producer.aclose()

    assert asyncio.run(web_request()) == (42, 6)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_jobs_own_log_lines_carry_its_id_queue_and_name(master, redis_url, producer, fmt):
    m = master(f'log_format = "{fmt}"\n' + toml(redis_url, imports=IMPORTS), workers=2)
    job_id = log_lines.push("a line from user code")
    producer.result(job_id, timeout=15)
    line = m.wait_log(r".*a line from user code.*")[0]
    if fmt == "json":
        record = json.loads(line)
        assert record["logger"] == "userapp.emails" and record["level"] == "warning"
        fields = (record["job_id"], record["queue"], record["job"])
        assert fields == (job_id, "default", "log_lines")
    else:
        assert "userapp.emails" in line
        assert line.endswith(f"job_id={job_id} queue=default job=log_lines")
