"""Jobs that misbehave cannot take the pool down: a payload that cannot be decoded, a job that
forks and lets its child return, one that closes its worker's descriptors, one whose subprocess
would outlive a timeout kill. Under the real `jobpool start`, proven through statuses, files,
pids and the master's CPU time."""

from __future__ import annotations

import time

import psutil
import pytest
from helpers import wait_until
from jobs import CloseFds, Forker, Record, Spawner, runs
from masters import toml

from jobpool import Job, Outcome, QueueManager, Worker
from jobpool.errors import JobEncodeError
from jobpool.ids import new_job_id

DEPTH = 100_000


def status(qm: QueueManager, job_id: str) -> str | None:
    return (qm.get_job_status(job_id) or {}).get("status")


def plant_deep_payload(qm: QueueManager, queue: str = "default") -> str:
    """A job whose body is JSON nested DEPTH levels deep, as another producer could store it."""
    job_id = new_job_id(queue)
    body = '{"job":"jobs:Record","attrs":{"path":' + "[" * DEPTH + "]" * DEPTH + "}}"
    qm.driver.enqueue(queue, [(job_id, body, {"job": "Record", "queue": queue, "max_tries": 3})])
    return job_id


def test_a_payload_too_deep_to_decode_fails_its_job_at_once(qm):
    job_id = plant_deep_payload(qm)
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    record = qm.get_job_status(job_id)
    assert record["status"] == "failed" and record["attempts"] == 1
    assert "nested too deeply" in record["error"]


def test_pushing_attributes_too_deep_to_encode_names_the_attribute(qm, tmp_path):
    deep: list = []
    for _ in range(DEPTH // 10):
        deep = [deep]
    job = Record(str(tmp_path / "out"))
    job.extra = deep
    with pytest.raises(JobEncodeError, match="'extra' is nested too deeply"):
        qm.push(job)
    assert qm.counts()["ready"] == 0


class MainJob(Job):
    """Posing as a class of the script being run."""

    def handle(self) -> None:
        """Never runs."""


MainJob.job_name = "__main__:MainJob"


def test_push_refuses_a_job_class_of_main_on_redis(redis_url):
    with QueueManager(redis_url) as qm:
        with pytest.raises(JobEncodeError, match="defined in __main__.*`imports`"):
            qm.push(MainJob())
        assert qm.counts()["ready"] == 0


def test_a_deep_payload_neither_stops_the_worker_nor_blocks_the_queue(redis_url, tmp_path, master):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    qm = QueueManager(redis_url)
    deep = plant_deep_payload(qm)
    behind = qm.push(Record(str(tmp_path / "out")))
    wait_until(lambda: status(qm, behind) == "completed", 10, 0.05, "the job behind it")
    record = qm.get_job_status(deep)
    assert record["status"] == "failed" and "nested too deeply" in record["error"]
    assert m.exits() == []  # the worker never crashed
    qm.close()


def test_a_forked_child_returning_from_handle_leaves_without_touching_the_batch(
    redis_url, tmp_path, master
):
    m = master(toml(redis_url, pool={"prefetch": 8}, queues={"default": {"workers": 1}}), 1)
    qm = QueueManager(redis_url)
    out, forks = tmp_path / "out", tmp_path / "forks"
    ids = qm.push_many([Forker(str(forks)), *(Record(str(out), f"r{i}") for i in range(7))])
    wait_until(lambda: all(status(qm, i) == "completed" for i in ids), 15, 0.05, "all eight")
    # A fixed pause on purpose: time for a stray child to run anything twice, which must not
    # happen (there is nothing to wait for).
    time.sleep(0.5)
    assert sorted(runs(out)) == [f"r{i}" for i in range(7)]  # each batch-mate ran once
    assert sorted(line.split(":")[0] for line in runs(forks)) == ["child", "parent"]
    m.wait_log(r"a job forked and its child \(pid \d+\) returned into the worker")
    assert m.exits() == []
    qm.close()


@pytest.mark.timing
def test_a_job_closing_the_workers_descriptors_does_not_spin_the_master(
    redis_url, tmp_path, master
):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    qm = QueueManager(redis_url)
    closer = qm.push(CloseFds(str(tmp_path / "closed")))
    wait_until(lambda: status(qm, closer) == "completed", 15, 0.05, "the closing job")
    m.wait_log("closed its report pipe")
    master_proc = psutil.Process(m.pid)
    before = sum(master_proc.cpu_times()[:2])
    time.sleep(2)  # the measuring window
    # Spinning on end-of-file would cost about a core (2 s); an idle master uses milliseconds. CPU
    # time does not grow with the machine's load, so the bound holds on a busy machine too.
    assert sum(master_proc.cpu_times()[:2]) - before < 0.5
    after = qm.push(Record(str(tmp_path / "out")))  # the worker reconnected and goes on
    wait_until(lambda: status(qm, after) == "completed", 15, 0.05, "a job after it")
    assert runs(tmp_path / "out") == ["ran"]
    m.assert_running()
    qm.close()


def test_a_timeout_kill_takes_the_jobs_subprocesses_with_it(redis_url, tmp_path, master):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    qm = QueueManager(redis_url)
    out = tmp_path / "out"
    job_id = qm.push(Spawner(str(out)))
    wait_until(lambda: status(qm, job_id) == "failed", 15, 0.05, "the timeout kill")
    m.wait_log("reason timeout")
    sleep_pid = int(runs(out)[0].split(":")[1])

    def sleep_gone() -> bool:
        try:
            return psutil.Process(sleep_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(sleep_gone, 5, 0.05, f"the job's `sleep 60` (pid {sleep_pid}) to die")
    qm.close()
