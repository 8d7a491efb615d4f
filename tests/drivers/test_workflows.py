"""Chains and batches on both drivers (and a Redis Cluster): a chain's steps one after the
other, stopped by a failure or a cancel; a batch's counters and its callbacks, each run once,
counted by the same step that records each job's outcome. A worker's death under a real
`jobpool start` is in tests/processes/test_workflow_deaths.py."""

from __future__ import annotations

import asyncio
import threading

import pytest
from job_functions import add, boom
from jobs import Fail, Record, Sleep, runs

from jobpool import Job, Outcome, QueueManager, Worker, batch, chain, current_job
from jobpool.errors import JobFailed

QM_BACKENDS = ("memory", "redis", "cluster")  # see tests/conftest.py


def drain(qm, timeout=0.0):
    """Run what is ready, in order, until nothing is (for `timeout` s): the outcomes."""
    worker, outcomes = Worker(qm), []
    try:
        while (delivery := qm.pop(timeout=timeout)) is not None:
            outcomes.append(worker.process(delivery))
    finally:
        worker.session.close()
    return outcomes


def statuses(qm, chain_id):
    return [step["status"] for step in qm.get_job_status(chain_id)["steps"]]


class Once(Job):
    """Fails for good at once, without retries."""

    max_tries = 1

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        raise RuntimeError("no luck")


def test_a_chain_runs_its_steps_one_after_the_other(qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = qm.push(chain(Record(path, "a"), Record(path, "b"), add.s(2, 3)))
    status = qm.get_job_status(chain_id)
    assert status["kind"] == "chain" and status["status"] == "processing"
    assert statuses(qm, chain_id) == ["queued", "waiting", "waiting"]
    assert qm.size() == 1  # only the first step waits in the queue
    first = qm.pop()
    assert first.id == status["steps"][0]["id"] and qm.pop() is None  # b waits for a
    Worker(qm).process(first)
    assert statuses(qm, chain_id) == ["completed", "queued", "waiting"]
    assert drain(qm) == [Outcome.COMPLETED, Outcome.COMPLETED]
    assert runs(path) == ["a", "b"]
    status = qm.get_job_status(chain_id)
    assert status["status"] == "completed" and status["finished_at"] >= status["created_at"]
    assert statuses(qm, chain_id) == ["completed"] * 3
    assert qm.result(status["steps"][2]["id"], timeout=0) == 5
    assert [s["job"] for s in status["steps"]] == ["Record", "Record", "add"]


def test_a_failure_stops_the_chain_and_cancels_the_rest(qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = qm.push(chain(Record(path, "a"), Once(path), Record(path, "c"), Record(path, "d")))
    assert drain(qm) == [Outcome.COMPLETED, Outcome.FAILED]
    assert statuses(qm, chain_id) == ["completed", "failed", "cancelled", "cancelled"]
    assert qm.get_job_status(chain_id)["status"] == "failed"
    assert qm.size() == 0 and runs(path) == ["a"]


def test_a_step_that_retries_holds_the_chain_until_it_completes(qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = qm.push(chain(Fail(path), Record(path, "b")))
    assert Worker(qm).process(qm.pop()) is Outcome.RETRYING  # attempts left: not an outcome
    assert statuses(qm, chain_id) == ["retrying", "waiting"]
    assert drain(qm, timeout=0.5) == [Outcome.RETRYING, Outcome.FAILED]
    assert statuses(qm, chain_id) == ["failed", "cancelled"]
    assert runs(path) == ["failed:RuntimeError:boom"]  # its failed() hook, and b never ran


def test_cancelling_a_step_stops_the_chain(qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = qm.push(chain(Record(path, "a"), Record(path, "b"), Record(path, "c")))
    waiting = qm.get_job_status(chain_id)["steps"][1]["id"]
    assert qm.cancel(waiting) is True  # a waiting step can be cancelled: the chain stops
    assert statuses(qm, chain_id) == ["queued", "cancelled", "cancelled"]
    assert qm.get_job_status(chain_id)["status"] == "cancelled"
    assert drain(qm) == [Outcome.COMPLETED]  # the running step ends; nothing follows it
    assert runs(path) == ["a"] and statuses(qm, chain_id)[0] == "completed"


def test_a_running_step_cancelled_stops_the_chain(qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = qm.push(chain(Fail(path), Record(path, "b")))
    delivery = qm.pop()
    assert qm.cancel(delivery.id) is True  # asked to stop; its failure ends it cancelled
    assert Worker(qm).process(delivery) is Outcome.CANCELLED
    assert statuses(qm, chain_id) == ["cancelled", "cancelled"]
    assert qm.get_job_status(chain_id)["status"] == "cancelled" and qm.pop() is None


def test_a_chains_result_is_its_last_steps(qm, tmp_path):
    chain_id = qm.push(chain(Record(str(tmp_path / "out"), "a"), add.s(2, 3)))
    with pytest.raises(TimeoutError, match=f"chain {chain_id} is still processing"):
        qm.result(chain_id, timeout=0)
    assert drain(qm) == [Outcome.COMPLETED, Outcome.COMPLETED]
    assert qm.result(chain_id, timeout=0) == 5
    assert asyncio.run(qm.aresult(chain_id, timeout=0)) == 5


def test_a_failed_chains_result_raises_for_the_step_that_failed(qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = qm.push(chain(Record(path, "a"), Once(path), add.s(2, 3)))
    failed = qm.get_job_status(chain_id)["steps"][1]["id"]
    assert drain(qm) == [Outcome.COMPLETED, Outcome.FAILED]
    with pytest.raises(JobFailed, match="no luck") as caught:
        qm.result(chain_id, timeout=5)
    assert caught.value.job_id == failed and "RuntimeError" in caught.value.traceback


def test_cancelling_a_chain_cancels_what_is_left_of_it(qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = qm.push(chain(Fail(path), Record(path, "b"), Record(path, "c")))
    running = qm.pop()  # the first step runs
    assert qm.cancel(chain_id) is True
    assert statuses(qm, chain_id) == ["processing", "cancelled", "cancelled"]
    assert Worker(qm).process(running) is Outcome.CANCELLED  # asked to stop: its failure ends it
    assert statuses(qm, chain_id) == ["cancelled"] * 3
    assert qm.get_job_status(chain_id)["status"] == "cancelled"
    assert qm.cancel(chain_id) is False  # nothing left
    with pytest.raises(JobFailed):
        qm.result(chain_id, timeout=0)


def test_result_and_cancel_refuse_a_batchs_id_and_say_where_to_look(qm):
    batch_id = qm.push(batch([add.s(1, 2), add.s(3, 4)]))
    for call in (lambda: qm.result(batch_id, timeout=0), lambda: qm.cancel(batch_id)):
        with pytest.raises(ValueError, match=r"is a batch: .*batch_status\(\)"):
            call()


SEEN: list[str | None] = []


class Where(Job):
    """Notes which workflow current_job() says it belongs to."""

    def handle(self) -> None:
        SEEN.append(current_job().workflow)


def test_a_job_knows_the_chain_or_batch_it_belongs_to(qm):
    SEEN.clear()
    chain_id = qm.push(chain(Where(), Where()))
    batch_id = qm.push(batch([Where()], then=Where(), finally_=Where()))
    qm.push(Where())
    assert drain(qm) == [Outcome.COMPLETED] * 6
    assert sorted(SEEN, key=str) == sorted([chain_id] * 2 + [batch_id] * 3 + [None], key=str)


def test_a_batch_counts_its_jobs_and_runs_then_and_finally_once(qm, tmp_path):
    path, calls = str(tmp_path / "out"), str(tmp_path / "calls")
    batch_id = qm.push(
        batch(
            [Record(path, str(i)) for i in range(4)],
            then=Record(calls, "then"),
            catch=Record(calls, "catch"),
            finally_=Record(calls, "finally"),
        )
    )
    status = qm.batch_status(batch_id)
    counts = (status["total"], status["pending"], status["completed"], status["failed"])
    assert counts == (4, 4, 0, 0)
    assert status["progress"] == 0.0 and status["status"] == "processing"
    assert qm.size() == 4  # the callbacks wait for the batch
    Worker(qm).process(qm.pop())
    assert qm.batch_status(batch_id)["progress"] == 0.25
    assert drain(qm) == [Outcome.COMPLETED] * 5  # three jobs, then `then` and `finally`
    status = qm.batch_status(batch_id)
    assert (status["pending"], status["completed"], status["failed"], status["progress"]) == (
        0,
        4,
        0,
        1.0,
    )
    assert status["status"] == "completed"
    assert sorted(runs(path)) == ["0", "1", "2", "3"] and runs(calls) == ["then", "finally"]
    callbacks = {role: c["status"] for role, c in status["callbacks"].items()}
    assert callbacks == {"then": "completed", "catch": "cancelled", "finally": "completed"}
    assert qm.get_job_status(batch_id)["kind"] == "batch"


def test_a_failure_runs_catch_at_once_and_finally_at_the_end(qm, tmp_path):
    path, calls = str(tmp_path / "out"), str(tmp_path / "calls")
    jobs = [Once(path), Record(path, "ok"), boom.s("bad"), Record(path, "ok")]
    batch_id = qm.push(
        batch(jobs, then=Record(calls, "then"), catch=Record(calls, "catch"), finally_=add.s(1, 1))
    )
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    status = qm.batch_status(batch_id)
    assert (status["pending"], status["failed"], status["callbacks"]["catch"]["status"]) == (
        3,
        1,
        "queued",  # released by the first failure, behind the jobs already queued
    )
    drain(qm)
    status = qm.batch_status(batch_id)
    assert (status["completed"], status["failed"], status["status"]) == (2, 2, "failed")
    assert runs(calls) == ["catch"]  # once, though two failed; `then` never runs
    callbacks = {role: c["status"] for role, c in status["callbacks"].items()}
    assert callbacks == {"then": "cancelled", "catch": "completed", "finally": "completed"}


def test_a_cancelled_batch_job_counts_as_failed(qm, tmp_path):
    path = str(tmp_path / "out")
    batch_id = qm.push(batch([Fail(path), Record(path, "b")], finally_=Record(path, "end")))
    delivery = qm.pop()
    assert qm.cancel(delivery.id) is True  # running: asked to stop, its failure ends it
    assert Worker(qm).process(delivery) is Outcome.CANCELLED
    drain(qm)
    status = qm.batch_status(batch_id)
    assert (status["pending"], status["failed"], status["cancelled"]) == (0, 1, 1)
    assert runs(path) == ["b", "end"]


def test_a_hand_retried_job_is_not_counted_twice(qm, tmp_path):
    path = str(tmp_path / "out")
    batch_id = qm.push(batch([Once(path), Record(path, "b")]))
    drain(qm)
    failed = qm.failed_jobs()[0]["id"]
    assert qm.retry_failed(failed) is True
    drain(qm)
    status = qm.batch_status(batch_id)
    assert (status["total"], status["completed"], status["failed"]) == (2, 1, 1)


def test_workflow_jobs_share_one_queue(qm, tmp_path):
    from job_functions import send_email  # queue="emails"

    with pytest.raises(ValueError, match="all jobs of a chain run on one queue"):
        qm.push(chain(add.s(1, 2), send_email.s("a@x")))
    with pytest.raises(ValueError, match="all jobs of a batch run on one queue"):
        qm.push(batch([add.s(1, 2)], then=send_email.s("a@x")))
    chain_id = qm.push(chain(add.s(1, 2), send_email.s("a@x")), queue="bulk")
    assert chain_id.startswith("bulk:") and qm.size("bulk") == 1
    batch_id = qm.push(batch([send_email.s("a@x"), send_email.s("b@x")]))  # the jobs' own
    assert batch_id.startswith("emails:") and qm.size("emails") == 2


def test_what_a_workflow_refuses(qm):
    with pytest.raises(ValueError, match="at least one"):
        chain()
    with pytest.raises(ValueError, match="at least one"):
        batch([])
    with pytest.raises(TypeError, match=r"fn\.s\(\.\.\.\)"):
        chain(add)
    with pytest.raises(TypeError, match="do not nest"):
        batch([chain(add.s(1, 2))])


def test_apush_takes_a_workflow(qm):
    chain_id = asyncio.run(qm.apush(chain(add.s(1, 2), add.s(3, 4))))
    assert statuses(qm, chain_id) == ["queued", "waiting"]


def test_unknown_ids(qm):
    assert qm.batch_status("default:nope") is None
    assert qm.get_job_status("default:nope") is None
    chain_id = qm.push(chain(add.s(1, 2)))
    assert qm.batch_status(chain_id) is None  # a chain is no batch
    assert qm.get_job_status(chain_id)["status"] == "processing"


def test_two_workers_finishing_the_last_jobs_at_once_run_each_callback_once(redis_url, tmp_path):
    """Many small batches, each finished by two threads acking its last two jobs at the same
    moment (a barrier), each on its own connection: `then` and `finally` are released exactly
    once per batch."""
    qm = QueueManager(redis_url)
    calls = str(tmp_path / "calls")
    rounds = 30
    workers = [Worker(qm), Worker(qm)]
    for r in range(rounds):
        batch_id = qm.push(
            batch(
                [Record(str(tmp_path / "out"), f"{r}.{i}") for i in range(2)],
                then=Record(calls, f"then.{r}"),
                finally_=Record(calls, f"finally.{r}"),
            )
        )
        # Each worker claims on its own connection (qm.pop() opens one per call).
        deliveries = [w.session.fetch("default", w.worker_id).deliveries[0] for w in workers]
        barrier = threading.Barrier(2)

        def finish(worker, delivery, barrier=barrier):
            barrier.wait()
            worker.process(delivery)

        pairs = zip(workers, deliveries, strict=True)
        threads = [threading.Thread(target=finish, args=pair) for pair in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert qm.batch_status(batch_id)["completed"] == 2
        ran = 0
        while fetched := workers[0].session.fetch("default", workers[0].worker_id).deliveries:
            workers[0].process(fetched[0])
            ran += 1
        assert ran == 2  # `then` and `finally`, once each
    for worker in workers:
        worker.session.close()
    expected = [f"then.{r}" for r in range(rounds)] + [f"finally.{r}" for r in range(rounds)]
    assert sorted(runs(calls)) == sorted(expected)
    qm.close()


def test_a_death_on_the_last_attempt_fails_the_batch_job(qm, tmp_path):
    """requeue.lua (a worker's death) fails a job out of attempts: the batch counts it."""
    path = str(tmp_path / "out")
    job = Sleep(path, 0)
    job.max_tries = 1
    batch_id = qm.push(batch([job, Record(path, "b")], catch=Record(path, "caught")))
    delivery = qm.pop()
    requeued = qm.driver.requeue_worker("default", delivery.worker_id, "worker killed by signal 9")
    assert requeued.failed == ((delivery.id, "Sleep"),)
    status = qm.batch_status(batch_id)
    assert (status["pending"], status["failed"], status["callbacks"]["catch"]["status"]) == (
        1,
        1,
        "queued",
    )
