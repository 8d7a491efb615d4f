"""Redis answers, and refuses: a full server (maxmemory, noeviction), a read-only replica after a
failover, a Redis Cluster node that answers MOVED. No refusal ends the master or crash-loops the
workers; what cannot be done is kept and done once Redis accepts it; pushes say what was stored.

The session's server is made full with CONFIG SET maxmemory and read-only with REPLICAOF to a port
where nothing listens (it keeps its data, since no sync ever starts); both are undone after each
test. MOVED comes from a real two-node cluster.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from helpers import ClusterPair, free_port, wait_until
from jobs import Record, Sleep, runs
from masters import Master, toml

from jobpool import QueueManager
from jobpool.errors import PushError, RedisFullError

FULL = 256 * 1024  # bytes under the memory in use: Redis trims idle client buffers by tens of KB


def status(qm: QueueManager, job_id: str) -> dict:
    return qm.get_job_status(job_id) or {}


@pytest.fixture
def fill(redis_client: redis.Redis) -> Iterator[Callable[[float], None]]:
    """fill(extra): maxmemory at the memory used now plus `extra` bytes (negative: already
    over), policy noeviction. maxmemory goes back to 0 (no limit) after the test."""

    def at(extra: float = 0) -> None:
        used = int(redis_client.info("memory")["used_memory"])
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("maxmemory", str(max(int(used + extra), 1)))

    yield at
    redis_client.config_set("maxmemory", "0")


def test_push_on_a_full_redis_raises_an_error_naming_maxmemory(redis_url, fill):
    qm = QueueManager(redis_url)
    fill(-FULL)
    with pytest.raises(RedisFullError, match="maxmemory") as caught:
        qm.push(Record("/nonexistent"))
    assert isinstance(caught.value, redis.exceptions.OutOfMemoryError)  # old handlers catch it
    assert caught.value.stored == []
    with pytest.raises(RedisFullError):
        qm.later(Record("/nonexistent"), 5)
    assert qm.counts() == {"ready": 0, "delayed": 0, "in_flight": 0, "failed": 0}
    qm.close()


def test_push_many_that_fills_redis_says_exactly_which_jobs_were_stored(
    redis_url, redis_client, fill
):
    qm = QueueManager(redis_url)
    pad = "x" * 1000
    before = int(redis_client.info("memory")["used_memory"])
    qm.push_many([Record("/nonexistent", pad) for _ in range(1000)])  # one batch, to measure
    batch = int(redis_client.info("memory")["used_memory"]) - before
    redis_client.execute_command("FLUSHALL", "SYNC")  # freed now, not later (Valkey's lazyfree)
    # Room for a few batches (a batch's arguments take memory too while it runs), not for all.
    fill(batch * 3)
    jobs = [Record("/nonexistent", pad) for _ in range(6500)]
    with pytest.raises(RedisFullError, match="maxmemory") as caught:
        qm.push_many(jobs)
    stored = caught.value.stored
    assert 1000 <= len(stored) < 6500 and len(stored) % 1000 == 0  # whole batches only
    keys = qm.driver.keys("default")
    assert {i.decode() for i in redis_client.hkeys(keys.state)} == set(stored)
    assert {i.decode() for i in redis_client.hkeys(keys.payload)} == set(stored)
    assert [i.decode() for i in redis_client.lrange(keys.ready, 0, -1)] == stored
    qm.close()


def test_push_many_error_after_some_batches_is_a_push_error(redis_url, redis_client, fill):
    qm = QueueManager(redis_url)
    fill(-FULL)
    with pytest.raises(RedisFullError) as caught:
        qm.push_many([Record("/nonexistent") for _ in range(1500)])
    assert isinstance(caught.value, PushError) and caught.value.stored == []
    assert redis_client.hlen(qm.driver.keys("default").state) == 0
    qm.close()


def test_a_full_redis_still_drains_its_queue_through_jobpool_start(
    redis_url, redis_client, tmp_path, fill, master
):
    qm = QueueManager(redis_url)
    out = tmp_path / "out"
    ids = qm.push_many([Record(str(out), f"{i}-{'x' * 200}") for i in range(733)])
    fill(-FULL)  # full before any worker starts
    with pytest.raises(RedisFullError):
        qm.push(Record(str(out)))
    m = master(toml(redis_url, queues={"default": {"workers": 4}}), workers=4)
    wait_until(lambda: len(runs(out)) >= 733, 60, 0.1, "all 733 jobs to run")
    wait_until(lambda: all(status(qm, i).get("status") == "completed" for i in ids[-5:]), 10, 0.1)
    assert sorted(runs(out)) == sorted(f"{i}-{'x' * 200}" for i in range(733))  # each once
    assert qm.counts()["ready"] == 0
    assert m.exits() == []  # no worker crashed on the full server
    m.assert_running()
    qm.close()


def test_a_read_only_replica_neither_kills_the_master_nor_loses_the_dead_workers_job(
    redis_url, redis_client, tmp_path, read_only, master
):
    # A lease longer than the test: only the master may hand the dead worker's job back (with
    # leases renewals refused, a short lease would lapse and a peer would reap it instead).
    m = master(toml(redis_url, pool={"lease": 30}), workers=2)
    qm = QueueManager(redis_url)
    out = tmp_path / "out"
    job_id = qm.push(Sleep(str(out), 1.0))
    wait_until(lambda: runs(out), 10, 0.02, "the job to start")
    busy = int(runs(out)[0].split(":")[1])
    read_only(True)
    os.kill(busy, signal.SIGKILL)  # its master must requeue the job, and Redis refuses
    m.wait_log(rf"jobpool.supervisor\[{m.pid}\]: redis refused .*READONLY: the server is a")
    # A fixed pause on purpose: workers and master keep meeting the refusal meanwhile, and must
    # neither exit nor crash-loop (there is nothing to wait for).
    time.sleep(2.5)
    m.assert_running()
    assert [reason for _, _, reason in m.exits()] == ["crash"]  # the killed one; no crash loop
    master_lines = [
        line for line in m.log().splitlines() if f"supervisor[{m.pid}]: redis refused" in line
    ]
    assert len(master_lines) == 1, master_lines  # once per kind, not once per try
    assert status(qm, job_id)["status"] == "processing"  # kept: nothing could change it
    read_only(False)
    record = wait_until(
        lambda: status(qm, job_id).get("status") == "completed" and status(qm, job_id),
        15,
        0.05,
        "the job to be requeued and run again once Redis accepts writes",
    )
    assert record["attempts"] == 2 and "signal 9" in record["error"]
    qm.close()


def test_an_ack_refused_by_a_read_only_redis_is_kept_and_sent_again(redis_url, tmp_path, read_only):
    qm = QueueManager(redis_url)
    job_id = qm.push(Record(str(tmp_path / "out")))
    session = qm.driver.session()
    delivery = session.begin(session.fetch("default", "w1").deliveries[0])
    read_only(True)
    session.complete(delivery)
    with pytest.raises(redis.ResponseError, match="READONLY|read only"):
        session.flush()
    assert status(qm, job_id)["status"] == "processing"
    read_only(False)
    session.flush()
    assert status(qm, job_id)["status"] == "completed"
    session.close()
    qm.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterPair]:
    pair = ClusterPair(tmp_path)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()


def test_a_cluster_node_answering_moved_neither_kills_the_master_nor_loops_the_workers(
    cluster, tmp_path, master
):
    port = cluster.node_without("jobpool:{default}:ready")
    m = master(toml(f"redis://127.0.0.1:{port}/0"), workers=2)
    m.wait_log(rf"supervisor\[{m.pid}\]: redis refused .*MOVED: .*set cluster = true")
    time.sleep(2.5)  # on purpose: 2.5 s in which a crash loop would show (nothing to wait for)
    workers = m.workers()
    assert m.exits() == [] and len(workers) == 2  # every worker waits; none crash-loops
    victim = next(iter(workers))
    os.kill(victim, signal.SIGKILL)  # requeueing its jobs is refused too
    m.wait_workers(2, gone=[victim])
    time.sleep(1.5)  # on purpose, as above: the replacement must not crash-loop either
    m.assert_running()
    assert [reason for _, _, reason in m.exits()] == ["crash"]
    worker_lines = re.findall(r"worker\[(\d+)\]: redis refused a claim", m.log())
    assert len(worker_lines) == len(set(worker_lines))  # each worker said it once
    m.send(signal.SIGTERM)
    assert m.wait_exit(15) == 0
    assert "still hold jobs" in m.log()  # what it could not do, it says it left


def test_sighup_with_a_changed_redis_section_keeps_the_running_config(redis_url, tmp_path, master):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    before = set(m.workers())
    changed = toml(redis_url, queues={"default": {"workers": 2}})
    m.config.write_text(changed.replace("[redis]\n", "[redis]\nsocket_timeout = 7\n"))
    m.send(signal.SIGHUP)
    m.wait_log(r"\[redis\] changed: restart jobpool to apply; keeping the running config")
    time.sleep(1.0)  # on purpose: time for a wrongly applied reload to replace or add workers
    assert set(m.workers()) == before  # neither replaced nor grown: the old config runs
    qm = QueueManager(redis_url)
    job_id = qm.push(Record(str(tmp_path / "out")))
    wait_until(lambda: status(qm, job_id).get("status") == "completed", 10, 0.05)
    qm.close()


def test_sighup_with_a_changed_metrics_section_keeps_the_running_config(
    redis_url, tmp_path, master
):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    before = set(m.workers())
    m.config.write_text(
        toml(redis_url, queues={"default": {"workers": 2}})
        + f'[metrics]\nlisten = "127.0.0.1:{free_port()}"\n'
    )
    m.send(signal.SIGHUP)
    m.wait_log(r"\[metrics\] changed: restart jobpool to apply; keeping the running config")
    time.sleep(1.0)  # on purpose: time for a wrongly applied reload to replace or add workers
    assert set(m.workers()) == before


def test_a_master_started_on_a_full_redis_keeps_running(redis_url, tmp_path, fill):
    fill(-FULL)
    m = Master(tmp_path, toml(redis_url))
    try:
        m.wait_workers(2)
        time.sleep(2)  # on purpose: 2 s in which a master that gives up would exit
        m.assert_running()
        assert m.exits() == []
    finally:
        m.kill()
