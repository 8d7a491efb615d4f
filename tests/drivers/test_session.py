"""The Redis session's pipelined begins and acks survive dropped connections and script
flushes: nothing acknowledged is lost, nothing is applied twice."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import blocked_in, wait_until
from jobs import Record

from jobpool.drivers.base import NOT_HELD


def _claim(qm, tmp_path, n):
    ids = qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(n)])
    session = qm.driver.session()
    return ids, session, session.fetch("default", "w1", count=n).deliveries


def test_acks_are_applied_by_the_next_round_trip(redis_qm, tmp_path):
    ids, session, deliveries = _claim(redis_qm, tmp_path, 3)
    for d in deliveries:
        session.complete(session.begin(d))
    session.flush()
    assert [redis_qm.get_job_status(i)["status"] for i in ids] == ["completed"] * 3


def test_acks_sent_before_a_dropped_connection_are_sent_again(redis_qm, tmp_path, redis_client):
    ids, session, deliveries = _claim(redis_qm, tmp_path, 2)
    session.complete(deliveries[0])
    session.begin(deliveries[1])  # writes the ack and the begin
    redis_client.client_kill_filter(_type="normal", skipme=True)
    session.complete(deliveries[1])
    with pytest.raises(Exception):  # noqa: B017 - the first flush meets the dead connection
        session.flush()
    session.flush()
    assert [redis_qm.get_job_status(i)["status"] for i in ids] == ["completed"] * 2
    assert redis_qm.get_job_status(ids[1])["attempts"] == 1  # the resent begin did not count twice
    assert redis_qm.counts()["in_flight"] == 0


def test_a_script_flush_between_writes_is_recovered(redis_qm, tmp_path, redis_client):
    ids, session, deliveries = _claim(redis_qm, tmp_path, 2)
    redis_client.script_flush()
    session.complete(deliveries[0])
    session.begin(deliveries[1])
    session.complete(deliveries[1])
    session.flush()
    assert [redis_qm.get_job_status(i)["status"] for i in ids] == ["completed"] * 2
    redis_client.script_flush()
    assert session.fetch("default", "w1").deliveries == []  # a claim after a flush works too


def _woken_by(qm, server, worker_ids, act):
    """Block a session per worker id in its idle wait (1.5 s), do `act`, and return how long
    after it each wait ended: a woken session within milliseconds, the others at their timeout,
    about 1.5 s later. The tests tell them apart at 0.8 s, room for a loaded machine."""
    sessions = {wid: qm.driver.session() for wid in worker_ids}
    woke: dict[str, float] = {}

    def idle(wid):
        sessions[wid].wait("default", 1.5, None, wid)
        woke[wid] = time.monotonic()

    threads = [threading.Thread(target=idle, args=(wid,)) for wid in sessions]
    for t in threads:
        t.start()
    wait_until(lambda: blocked_in(server) == len(threads), 5, message="every session to block")
    acted = time.monotonic()
    act()
    for t in threads:
        t.join(5)
    for session in sessions.values():
        session.close()
    return {wid: at - acted for wid, at in woke.items()}


@pytest.mark.timing
def test_a_push_wakes_one_idle_worker_and_its_fetch_claims_the_job(
    redis_qm, redis_server, tmp_path
):
    pushed = []
    woke = _woken_by(
        redis_qm,
        redis_server,
        ["w1", "w2", "w3"],
        lambda: pushed.append(redis_qm.push(Record(str(tmp_path / "out"), "x"))),
    )

    early = [wid for wid, after in woke.items() if after < 0.8]
    assert len(early) == 1, woke  # the others slept on until their timeout
    assert redis_qm.get_job_status(pushed[0])["status"] == "queued"  # moved, not yet claimed
    fetched = redis_qm.driver.session().fetch("default", early[0], count=8)
    assert [d.id for d in fetched.deliveries] == pushed
    assert redis_qm.get_job_status(pushed[0])["attempts"] == 1


@pytest.mark.timing
def test_a_new_earliest_delayed_job_wakes_every_idle_worker(redis_qm, redis_server, tmp_path):
    """They wait with timeouts set by the previous earliest; each must learn the new one."""
    for wid in ("w1", "w2"):
        redis_qm.driver.session().fetch("default", wid)  # registered, as running workers are

    woke = _woken_by(
        redis_qm,
        redis_server,
        ["w1", "w2"],
        lambda: redis_qm.later(Record(str(tmp_path / "out"), "x"), 10),
    )

    assert sorted(woke) == ["w1", "w2"]
    assert all(after < 0.8 for after in woke.values()), woke
    for wid in woke:
        fetched = redis_qm.driver.session().fetch("default", wid)
        assert fetched.deliveries == [] and 9 < fetched.next_due <= 10.01


def test_a_session_reconnects_as_often_as_it_must(redis_qm):
    """Each reconnect opens a connection of its own; none may count against the client pool's
    max_connections, or a worker would be refused after a hundred Redis restarts."""
    session = redis_qm.driver.session()
    for _ in range(150):
        session.fetch("default", "w1", count=1)
        session.close()  # as a dropped connection does
    for _ in range(150):
        assert redis_qm.pop(timeout=0) is None  # qm.pop() takes a session of its own each time


def test_a_begin_retried_after_a_lost_connection_asks_redis_whether_the_job_is_still_ours(
    redis_qm, tmp_path, redis_client
):
    # The ack of the first job carries the begin of the second, and the connection is lost
    # under it. Meanwhile the second job left this worker (its lease lapsed, say). The retried
    # begin must not take the resent ack's unread reply for a yes: it asks Redis itself.
    ids, session, deliveries = _claim(redis_qm, tmp_path, 2)
    first, second = deliveries
    session.complete(first)
    session.flush()  # connected
    session.complete(first)  # its ack again, held back: the next begin rides on it
    redis_client.client_kill_filter(_type="normal", skipme=True)
    with pytest.raises(Exception):  # noqa: B017 - the write meets the dead connection
        session.begin(second, confirm=True)
    redis_client.lrem(redis_qm.driver.keys("default").wip("w1"), 0, second.id)
    retried = session.begin(second, confirm=True)
    assert retried.record["status"] == NOT_HELD
    session.flush()
    assert redis_qm.get_job_status(ids[0])["status"] == "completed"
