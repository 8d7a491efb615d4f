"""Redis Cluster (`[redis] cluster = true`): queues spread over the primaries, and every part of
jobpool that holds a connection of its own (a worker's session and idle wait, the master's
requeues and renewals, stats) follows a queue's slot to its new owner after a failover.

The contract tests run on the session's Cluster too (QM_BACKENDS in test_queue_contract.py and
others); these are the Cluster's own cases. A manual failover (CLUSTER FAILOVER) keeps the
session's cluster whole; the test that kills a primary builds a cluster of its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cluster import Cluster
from helpers import wait_until
from jobs import Record

from jobpool import Outcome, QueueManager, Worker
from jobpool.config import RedisConfig
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.supervisor.handback import Handback


def ready_key(queue: str) -> str:
    return f"jobpool:{{{queue}}}:ready"


def test_queues_spread_over_the_primaries_and_stats_find_every_one(
    redis_cluster_nodes, cluster_qm, tmp_path
):
    queues = redis_cluster_nodes.spread_queues(6)
    assert len({redis_cluster_nodes.primary_of(ready_key(q)) for q in queues}) == 3
    for i, queue in enumerate(queues):
        cluster_qm.push_many([Record(str(tmp_path / "out"))] * (i + 1), queue)
    assert cluster_qm.driver.stored_queues() == sorted(queues)  # SCAN ran on every primary
    for i, queue in enumerate(queues):
        stats = cluster_qm.driver.stats(queue)
        assert stats["ready"] == i + 1 and stats["oldest_waiting_age"] is not None


def test_push_many_of_any_size_goes_in_batches_to_the_queues_node(cluster_qm, tmp_path):
    ids = cluster_qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(2500)])
    assert len(set(ids)) == 2500
    assert cluster_qm.counts()["ready"] == 2500
    assert cluster_qm.get_job_status(ids[-1])["status"] == "queued"


def test_a_session_follows_its_queue_to_the_new_primary_after_a_failover(
    redis_cluster_nodes, cluster_qm, tmp_path
):
    [queue] = redis_cluster_nodes.spread_queues(1)
    ids = cluster_qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(3)], queue)
    session = cluster_qm.driver.session()
    [first] = session.fetch(queue, "w1").deliveries
    session.complete(first)  # pipelined: written with the next claim, on the old primary's line
    old = redis_cluster_nodes.primary_of(ready_key(queue))
    new = redis_cluster_nodes.failover(old)
    assert redis_cluster_nodes.primary_of(ready_key(queue)) == new != old
    [second] = session.fetch(queue, "w1").deliveries  # MOVED: reconnects to `new`, resends
    assert second.id == ids[1]
    session.complete(session.begin(second))
    session.flush()
    assert [cluster_qm.get_job_status(i)["status"] for i in ids] == [
        "completed",
        "completed",
        "queued",
    ]
    assert cluster_qm.driver.stats(queue)["ready"] == 1  # stats read the new owner too
    session.close()


def test_an_idle_wait_ends_at_a_failover_and_the_next_one_wakes_on_the_new_primary(
    redis_cluster_nodes, cluster_qm, tmp_path
):
    [queue] = redis_cluster_nodes.spread_queues(1)
    session = cluster_qm.driver.session()
    ended: list[float] = []
    thread = threading.Thread(
        target=lambda: (session.wait(queue, 20.0, worker_id="w1"), ended.append(time.time()))
    )
    thread.start()
    time.sleep(0.3)  # blocked in BLMOVE on the queue's primary
    redis_cluster_nodes.failover(redis_cluster_nodes.primary_of(ready_key(queue)))
    thread.join(10)
    assert ended, "the wait should end when its node stops serving the slot, not at its timeout"
    started = time.monotonic()
    threading.Timer(0.3, lambda: cluster_qm.push(Record(str(tmp_path / "out")), queue)).start()
    session.wait(queue, 10.0, worker_id="w1")
    assert time.monotonic() - started < 5  # woken by the push, on the new primary
    assert len(session.fetch(queue, "w1").deliveries) == 1
    session.close()


def test_the_masters_requeues_and_renewals_follow_a_failover(
    redis_cluster_nodes, cluster_qm, tmp_path
):
    [queue] = redis_cluster_nodes.spread_queues(1)
    job_id = cluster_qm.push(Record(str(tmp_path / "out")), queue)
    session = cluster_qm.driver.session()
    assert [d.id for d in session.fetch(queue, "w1", lease=30).deliveries] == [job_id]
    redis_cluster_nodes.failover(redis_cluster_nodes.primary_of(ready_key(queue)))
    handback = Handback(cluster_qm.driver)
    handback.renew(0.0, {queue: (["w1"], 30.0)})
    assert handback.next_renewal == pytest.approx(10.0)  # done, not put off for a retry
    requeued = handback.requeue(queue, "w1", "worker killed by signal 9", count_attempt=True)
    assert requeued is not None and requeued.handed == 1 and not handback.pending
    assert cluster_qm.get_job_status(job_id)["status"] == "queued"
    session.close()


def test_a_job_runs_and_its_result_is_awaited_across_nodes(redis_cluster_nodes, cluster_qm):
    from job_functions import add

    queues = redis_cluster_nodes.spread_queues(3)
    ids = [cluster_qm.push(add.job(i, 1), q) for i, q in enumerate(queues)]
    for queue in queues:
        assert Worker(cluster_qm, queue=queue).process(cluster_qm.pop(queue)) is Outcome.COMPLETED
    assert [cluster_qm.result(i, timeout=5) for i in ids] == [1, 2, 3]

    async def main() -> list[object]:
        try:
            return [await cluster_qm.aresult(i, timeout=5) for i in ids]
        finally:
            await cluster_qm.aclose()

    assert asyncio.run(main()) == [1, 2, 3]


# -- a primary killed: a cluster of the module's own ------------------------------------------


@pytest.fixture(scope="module")
def lossy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = Cluster(Path(tmp_path_factory.mktemp("lossy-cluster")))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


def test_a_session_reconnects_to_the_replica_that_replaces_a_killed_primary(
    lossy_cluster, tmp_path
):
    qm = QueueManager(RedisConfig(host="127.0.0.1", port=lossy_cluster.ports[0], cluster=True))
    [queue] = lossy_cluster.spread_queues(1)
    ids = qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(2)], queue)
    wait_until(lambda: _replicated(lossy_cluster, queue), 5, message="the push to replicate")
    session = qm.driver.session()
    [first] = session.fetch(queue, "w1").deliveries
    old = lossy_cluster.primary_of(ready_key(queue))
    lossy_cluster.kill(old)
    killed = time.monotonic()

    def claim() -> list[str] | None:
        try:
            return [d.id for d in session.fetch(queue, "w1").deliveries]
        except CONNECTION_ERRORS + (redis.ResponseError,):
            return None

    # Until the replica is elected (about the node timeout, 1 s) the claim fails; after, the
    # session finds the new owner. The claim of `first` was replicated or not: either way the
    # worker holds it once, and the next claim hands it back or gives the second job.
    claimed = wait_until(claim, 20, 0.2, "a claim on the new primary")
    reconnect = time.monotonic() - killed
    assert set(claimed) <= set(ids) and claimed
    assert lossy_cluster.primary_of(ready_key(queue)) != old
    assert reconnect < 15
    assert qm.get_job_status(first.id)["status"] in ("processing", "queued")
    session.close()
    qm.close()


def _replicated(nodes: Cluster, queue: str) -> bool:
    with nodes.node(nodes.replica_of(nodes.primary_of(ready_key(queue)))) as replica:
        replica.execute_command("READONLY")
        return bool(replica.llen(ready_key(queue)) == 2)
