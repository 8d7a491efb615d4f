"""A full Redis (maxmemory, noeviction): workers and the master still drain it; only a push,
which can only add, is refused.

Redis refuses a command that may grow memory (HSET, RPUSH, ZADD, ...) only as the first write of
a script that began over the limit; commands that free memory (LPOP, LREM, DEL, HDEL, ZREM) are
never refused, and after one write a script goes on (it cannot stop halfway). So every script on
the job path frees before it writes (see lua/includes/common.lua). Redis 6.2 reports a refusal
inside a script as a plain ResponseError ("Error running script ... -OOM command not allowed
..."), Redis 7 as an OutOfMemoryError; both carry the message matched here. A push through the
driver raises an OutOfMemoryError on both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from jobs import Fail, Record, runs

from jobpool import Outcome, QueueManager, Worker
from jobpool.drivers.base import Requeued

OOM = "command not allowed when used memory > 'maxmemory'"
FREE_THEN_GROW = "redis.call('LPOP', KEYS[1]); return redis.call('RPUSH', KEYS[1], 'c')"
OVER = 256 * 1024  # how far past its limit a full server is: more than client buffers move


@pytest.fixture
def fill(redis_client: redis.Redis) -> Iterator[Callable[[], None]]:
    """Call it to make the server full: the limit is set below what the server uses now (a
    limit just above would be undone by the server trimming idle client buffers). The limit
    is lifted after the test whatever happened, so the next tests run on a normal server."""

    def fill() -> None:
        used = redis_client.info("memory")["used_memory"]
        redis_client.config_set("maxmemory", used - OVER)

    policy = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    redis_client.config_set("maxmemory-policy", "noeviction")
    try:
        yield fill
    finally:
        redis_client.config_set("maxmemory", 0)
        redis_client.config_set("maxmemory-policy", policy)


def assert_full(qm: QueueManager) -> None:
    """The server is full: a push is refused, and stores nothing."""
    size = qm.size()
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        qm.driver.enqueue("default", [("default:new", "{}", {"job": "Record"})])
    assert qm.size() == size


def test_redis_refuses_a_script_whose_first_write_may_grow_memory(redis_client, fill):
    """What the scripts' order of writes relies on, on this server's version."""
    redis_client.rpush("list", "a", "b")
    fill()
    with pytest.raises(redis.ResponseError, match=OOM):  # OutOfMemoryError from Redis 7 on
        redis_client.eval("return redis.call('RPUSH', KEYS[1], 'c')", 1, "list")
    assert redis_client.eval(FREE_THEN_GROW, 1, "list") == 2  # LPOP first: the RPUSH may follow
    assert redis_client.eval(FREE_THEN_GROW, 1, "list") == 2


def _fail_by_a_death(qm: QueueManager, path: str) -> str:
    job = Fail(path)
    job.max_tries = 1
    job_id = qm.push(job)
    qm.driver.requeue_worker("default", qm.pop().worker_id, "worker killed by signal 9")
    return job_id


def test_a_worker_claims_begins_acks_fails_and_releases_on_a_full_server(redis_qm, fill, tmp_path):
    path = str(tmp_path / "out")
    hook_id = _fail_by_a_death(redis_qm, path)  # first in line: its failed() hook is still to run
    retried = Fail(path)
    retried.max_tries = 2
    ids = [
        redis_qm.push(Record(path)),
        redis_qm.push(retried),
        redis_qm.push(Record(path)),
        redis_qm.push(Record(path)),
    ]
    session = redis_qm.driver.session()
    ready, wip = "jobpool:{default}:ready", "jobpool:{default}:wip:w1"
    redis_qm.driver.client.lmove(
        ready, wip, "LEFT", "RIGHT"
    )  # as an idle worker's wait takes a job
    fill()
    assert_full(redis_qm)

    fetched = session.fetch("default", "w1", count=5)  # a claim (and a new session's connection)
    hook, a, b, c, d = fetched.deliveries
    assert [x.id for x in fetched.deliveries] == [hook_id, *ids]
    assert redis_qm.get_job_status(hook_id)["hook"] == "started"  # first of the batch: begun
    assert session.retry_or_fail(hook, 0, "", "", force_fail=True) is Outcome.FAILED  # it ran
    assert "hook" not in redis_qm.get_job_status(hook_id)

    session.begin(a)  # the begin script
    session.flush()
    assert redis_qm.get_job_status(a.id)["status"] == "processing"
    session.complete(a)
    session.begin(b)  # rides on a's ack
    session.flush()
    assert redis_qm.get_job_status(a.id)["status"] == "completed"
    assert redis_qm.get_job_status(b.id)["status"] == "processing"
    assert session.retry_or_fail(b, 60, "RuntimeError: boom", "tb") is Outcome.RETRYING
    assert redis_qm.get_job_status(b.id)["status"] == "retrying"

    session.begin(c)
    assert session.release("w1", "default", [c.id, d.id]) == 2
    assert [redis_qm.get_job_status(x.id)["status"] for x in (c, d)] == ["queued", "queued"]
    assert redis_qm.get_job_status(c.id)["attempts"] == 0
    assert_full(redis_qm)  # all of that on a server that stayed full
    session.close()


def test_the_master_renews_and_requeues_on_a_full_server(redis_qm, fill):
    last = Fail("/dev/null")
    last.max_tries = 1
    ids = [redis_qm.push(last), redis_qm.push(Record("/dev/null"))]
    session = redis_qm.driver.session()
    session.fetch("default", "w1", count=2)
    before = redis_qm.driver.client.zscore("jobpool:{default}:workers", "w1")
    fill()
    assert_full(redis_qm)

    assert session.fetch("default", "w2").deliveries == []  # an idle worker keeps its lease
    redis_qm.driver.renew("default", ["w1", "w2"], 60.0)
    assert redis_qm.driver.client.zscore("jobpool:{default}:workers", "w1") > before
    assert redis_qm.driver.requeue_worker(
        "default", "w2", "lost", only_if_expired=True
    ) == Requeued(-1)
    requeued = redis_qm.driver.requeue_worker("default", "w1", "worker killed by signal 9")
    assert requeued == Requeued(2, ((ids[0], "Fail"),))
    assert redis_qm.get_job_status(ids[0])["status"] == "failed"
    assert redis_qm.get_job_status(ids[1])["status"] == "queued"
    assert redis_qm.driver.stats("default")["failed_last_minute"] == 1
    assert_full(redis_qm)
    session.close()


def test_draining_a_full_server_frees_it_for_pushes_again(redis_qm, fill, tmp_path):
    path = str(tmp_path / "out")
    redis_qm.push_many([Record(path, f"{i}" + "x" * 8000) for i in range(96)])  # ~770 KB of bodies
    fill()
    assert_full(redis_qm)
    worker = Worker(redis_qm, prefetch=8)
    done: list[int] = []

    def run() -> None:
        done.append(worker.run(burst=True, install_signals=False, keep_lease=False))

    # In a thread, so that a worker kept waiting by refusals fails the test instead of hanging.
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert done == [96], "the worker could not drain a full server"
    assert len(runs(path)) == 96
    redis_qm.push(Record(path))  # completed jobs leave their bodies behind: room again
    assert redis_qm.size() == 1
