"""The Redis session's pipelined starts and acks survive dropped connections and script
flushes: nothing acknowledged is lost, nothing is applied twice."""

from __future__ import annotations

import pytest
from jobs import Record

from jobpool import QueueManager


@pytest.fixture
def qm(redis_url):
    manager = QueueManager(redis_url)
    yield manager
    manager.close()


def _claim(qm, tmp_path, n):
    ids = qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(n)])
    session = qm.driver.session()
    return ids, session, session.fetch("default", "w1", count=n).deliveries


def test_acks_are_applied_by_the_next_round_trip(qm, tmp_path):
    ids, session, deliveries = _claim(qm, tmp_path, 3)
    for d in deliveries:
        session.complete(session.start(d))
    session.flush()
    assert [qm.get_job_status(i)["status"] for i in ids] == ["completed"] * 3


def test_acks_sent_before_a_dropped_connection_are_sent_again(qm, tmp_path, redis_client):
    ids, session, deliveries = _claim(qm, tmp_path, 2)
    session.complete(deliveries[0])
    session.start(deliveries[1])  # writes the ack and the start
    redis_client.client_kill_filter(_type="normal", skipme=True)
    session.complete(deliveries[1])
    with pytest.raises(Exception):  # noqa: B017 - the first flush meets the dead connection
        session.flush()
    session.flush()
    assert [qm.get_job_status(i)["status"] for i in ids] == ["completed"] * 2
    assert qm.get_job_status(ids[1])["attempts"] == 1  # the resent start did not count twice
    assert qm.counts()["in_flight"] == 0


def test_a_script_flush_between_writes_is_recovered(qm, tmp_path, redis_client):
    ids, session, deliveries = _claim(qm, tmp_path, 2)
    redis_client.script_flush()
    session.complete(deliveries[0])
    session.start(deliveries[1])
    session.complete(deliveries[1])
    session.flush()
    assert [qm.get_job_status(i)["status"] for i in ids] == ["completed"] * 2
    redis_client.script_flush()
    assert session.fetch("default", "w1").deliveries == []  # a claim after a flush works too
