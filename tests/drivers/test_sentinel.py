"""A Sentinel-managed primary: clients follow it across failovers, READONLY from a demoted
primary makes them reconnect, and durable writes (wait_replicas) wait for the replicas.

Runs on the session's Sentinel deployment (tests/support/sentinel.py: a primary, a replica,
three sentinels), or, for READONLY alone, on the session's single server made a replica.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TypeVar

import pytest
import redis
from helpers import wait_until
from jobs import Record

from jobpool import QueueManager
from jobpool.config import RedisConfig
from jobpool.drivers.redis.client import async_client, client_from_config
from jobpool.errors import PushError, ReplicationError

T = TypeVar("T")


@pytest.fixture
def sentinel_qm(redis_sentinel: RedisConfig) -> Iterator[QueueManager]:
    manager = QueueManager(redis_sentinel)
    yield manager
    manager.close()


def retried(step: Callable[[], T]) -> T:
    """`step()`, retried across lost connections for up to 10 s, as the worker's runner does."""
    started = time.monotonic()
    while True:
        try:
            return step()
        except redis.ConnectionError:
            assert time.monotonic() - started < 10
            time.sleep(0.05)


def connections_received(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


def commands_run(client: redis.Redis, name: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


def test_the_client_is_sentinel_managed_and_follows_a_failover(redis_sentinel, redis_sentinel_set):
    client = client_from_config(redis_sentinel)
    assert type(client.connection_pool).__name__ == "SentinelConnectionPool"
    client.set("before", 1)
    old, new = redis_sentinel_set.failover()
    assert old != new
    started = time.monotonic()
    while True:  # the first command after a failover may meet the closed connection
        try:
            client.set("after", 1)
            break
        except redis.ConnectionError:
            assert time.monotonic() - started < 10
            time.sleep(0.05)
    with redis_sentinel_set.server(new) as primary:
        assert primary.get("after") == b"1" and primary.get("before") == b"1"
    client.close()


def test_async_client_of_a_sentinel_client_reaches_the_primary(redis_sentinel, redis_sentinel_set):
    client = client_from_config(redis_sentinel)

    async def push_and_read() -> bytes | None:
        aclient = async_client(client)
        try:
            await aclient.set("async", "yes")
            return await aclient.get("async")
        finally:
            await aclient.aclose()

    assert asyncio.run(push_and_read()) == b"yes"
    with redis_sentinel_set.primary() as primary:
        assert primary.get("async") == b"yes"
    client.close()


def test_durable_push_waits_for_the_replica_in_the_same_round_trip(sentinel_qm, redis_sentinel_set):
    with redis_sentinel_set.primary() as primary:
        before = commands_run(primary, "wait")
        job_id = sentinel_qm.push(Record("/nonexistent"))
        sentinel_qm.push_many([Record("/nonexistent") for _ in range(3)])
        sentinel_qm.later(Record("/nonexistent"), 60)
        assert commands_run(primary, "wait") - before >= 3
    with (
        redis_sentinel_set.server(redis_sentinel_set.server_ports[1]) as a,
        redis_sentinel_set.server(redis_sentinel_set.server_ports[0]) as b,
    ):
        replica = a if a.info("replication")["role"] == "slave" else b
        assert replica.hget(sentinel_qm.driver.keys("default").state, job_id) is not None


def test_a_push_that_too_few_replicas_confirm_raises_replication_error(
    redis_sentinel, redis_sentinel_set
):
    qm = QueueManager(replace(redis_sentinel, wait_replicas=2, wait_timeout=0.2))
    started = time.monotonic()
    with pytest.raises(ReplicationError, match="may or may not be stored") as caught:
        qm.push(Record("/nonexistent"))
    assert 0.15 < time.monotonic() - started < 2
    error = caught.value
    assert isinstance(error, PushError) and error.replicas == 1 and len(error.unconfirmed) == 1
    assert qm.get_job_status(error.unconfirmed[0])["status"] == "queued"  # on the primary
    with pytest.raises(ReplicationError):
        asyncio.run(qm.apush(Record("/nonexistent")))
    qm.close()


def test_a_workers_ack_waits_and_a_shortfall_is_logged_not_fatal(
    redis_sentinel, redis_sentinel_set, caplog
):
    qm = QueueManager(replace(redis_sentinel, wait_replicas=2, wait_timeout=0.1))
    with redis_sentinel_set.primary() as primary:
        primary.rpush(qm.driver.keys("default").ready, "x")  # nothing: just a warm connection
        primary.delete(qm.driver.keys("default").ready)
    qm_plain = QueueManager(replace(redis_sentinel, wait_replicas=0))
    job_id = qm_plain.push(Record("/nonexistent"))
    session = qm.driver.session()
    delivery = session.fetch("default", "w1").deliveries[0]
    with caplog.at_level(logging.WARNING, "jobpool.worker"):
        session.complete(delivery, "")
        session.flush()
    assert qm.get_job_status(job_id)["status"] == "completed"
    assert "only 1 of 2 replica(s) confirmed an acknowledgement" in caplog.text
    session.close()
    qm.close()
    qm_plain.close()


def test_a_worker_session_rides_through_a_failover(sentinel_qm, redis_sentinel_set):
    """Claimed before the failover, acknowledged after it: the session reconnects to the new
    primary and resends, and nothing is claimed twice."""
    ids = sentinel_qm.push_many([Record("/nonexistent") for _ in range(4)])
    session = sentinel_qm.driver.session()
    fetched = session.fetch("default", "w1", count=4)
    assert [d.id for d in fetched.deliveries] == ids
    session.complete(fetched.deliveries[0], "")
    session.flush()
    redis_sentinel_set.failover()
    for delivery in fetched.deliveries[1:]:
        session.complete(retried(lambda d=delivery: session.begin(d)), "")
    retried(session.flush)
    assert [sentinel_qm.get_job_status(i)["status"] for i in ids] == ["completed"] * 4
    assert session.fetch("default", "w1", count=4).deliveries == []
    session.close()


def test_a_session_cut_off_on_the_old_primary_moves_its_ack_to_the_new_one(
    redis_sentinel, redis_sentinel_set
):
    """The old primary still takes writes for a while after a failover, but no replica gets
    them: they are lost when it is reconfigured, and the job would run again. A durable
    session sees its WAIT fall short, asks the sentinels, and sends its ack to the new primary
    instead; the next job of its batch runs only if the new primary says it is still ours."""
    qm = QueueManager(replace(redis_sentinel, wait_timeout=0.2))
    ids = qm.push_many([Record("/nonexistent") for _ in range(2)])
    session = qm.driver.session()
    first, second = session.fetch("default", "w1", count=2).deliveries
    old, new = redis_sentinel_set.failover(demote_old=False)
    session.complete(first, "")
    with pytest.raises(redis.ConnectionError, match="no longer the primary"):
        session.begin(second)
    began = session.begin(second)  # on the new primary, where the claim was replicated
    assert began.record["status"] == "processing"
    session.complete(began, "")
    session.flush()
    with redis_sentinel_set.server(new) as primary:
        states = [json.loads(primary.hget(qm.driver.keys("default").state, i)) for i in ids]
    assert [state["status"] for state in states] == ["completed", "completed"]
    session.close()
    qm.close()
    with redis_sentinel_set.server(old) as stale:
        stale.replicaof("127.0.0.1", new)


def demoted_under_a_wait(step: Callable[[], object], client: redis.Redis, demote) -> object:
    """What `step()` raised (or returned) when the server was demoted to a replica while the
    step's WAIT for replicas was blocked (the server has none, so WAIT waits its timeout)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(step())
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: any(c["cmd"] == "wait" for c in client.client_list()), 5)
    demote(True)
    thread.join(10)
    return outcome[0]


def test_a_wait_cut_short_by_a_demotion_is_a_lost_connection_and_the_write_is_sent_again(
    redis_url, redis_client, read_only, caplog
):
    """Redis answers UNBLOCKED to every client blocked in a WAIT as it demotes a primary (a
    failover), and closes their connections: the write that WAIT was confirming may be lost
    with the demoted server. A durable session takes it as a lost connection (reconnect at
    once and send again), not as a refusal to pause on and report as unexpected."""
    job_id = QueueManager(redis_url).push(Record("/nonexistent"))
    qm = QueueManager(RedisConfig(url=redis_url, wait_replicas=1, wait_timeout=2.0))
    session = qm.driver.session()
    with caplog.at_level(logging.WARNING, "jobpool"):
        fetch = lambda: session.fetch("default", "w1")  # noqa: E731
        claim = demoted_under_a_wait(fetch, redis_client, read_only)
        assert isinstance(claim, redis.ConnectionError), claim
        assert "demoted under a WAIT" in str(claim)
        read_only(False)
        delivery = session.fetch("default", "w1").deliveries[0]  # the claim, made anew
        assert delivery.id == job_id
        session.complete(delivery, "")
        ack = demoted_under_a_wait(session.flush, redis_client, read_only)
        assert isinstance(ack, redis.ConnectionError), ack
        read_only(False)
        session.flush()  # the ack, sent again
    assert qm.get_job_status(job_id)["status"] == "completed"
    assert "please report it" not in caplog.text
    session.close()
    qm.close()


def test_a_push_whose_wait_a_demotion_cut_short_may_or_may_not_be_stored(
    redis_url, redis_client, read_only
):
    """As for a WAIT that timed out: the push reached the old primary, which may lose it."""
    qm = QueueManager(RedisConfig(url=redis_url, wait_replicas=1, wait_timeout=2.0))
    pushed = demoted_under_a_wait(lambda: qm.push(Record("/nonexistent")), redis_client, read_only)
    assert isinstance(pushed, ReplicationError), pushed
    assert "may or may not be stored" in str(pushed)
    read_only(False)
    qm.close()


def test_readonly_makes_the_worker_session_reconnect(redis_url, redis_client, read_only, tmp_path):
    """A demoted primary keeps answering READONLY on the same connection: the session must
    drop it and connect anew (behind a DNS name or Sentinel, that finds the new primary)."""
    qm = QueueManager(redis_url)
    job_id = qm.push(Record(str(tmp_path / "out")))
    session = qm.driver.session()
    delivery = session.fetch("default", "w1").deliveries[0]
    read_only(True)
    before = connections_received(redis_client)
    session.complete(delivery, "")
    with pytest.raises(redis.ResponseError, match="READONLY|read only"):
        session.flush()
    with pytest.raises(redis.ResponseError, match="READONLY|read only"):
        session.flush()
    assert connections_received(redis_client) > before  # the second try came on a new one
    read_only(False)
    session.flush()
    assert qm.get_job_status(job_id)["status"] == "completed"
    session.close()
    qm.close()


def test_readonly_makes_the_drivers_pool_reconnect(redis_url, redis_client, read_only):
    """The master's requeues and renewals run on the driver's pool: after READONLY its
    connections are closed, so the next try connects anew."""
    qm = QueueManager(redis_url)
    qm.driver.renew("default", ["w1"], 30)
    read_only(True)
    before = connections_received(redis_client)
    for _ in range(2):
        with pytest.raises(redis.ResponseError, match="READONLY|read only"):
            qm.driver.renew("default", ["w1"], 30)
    assert connections_received(redis_client) > before
    read_only(False)
    qm.driver.renew("default", ["w1"], 30)
    qm.close()
