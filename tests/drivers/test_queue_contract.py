"""The promises both drivers keep, run against the in-memory driver and a real redis-server."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from helpers import wait_until
from jobs import Fail, FollowUp, Record, runs

from jobpool import Job, Outcome, QueueManager, Worker
from jobpool.drivers.base import Requeued
from jobpool.drivers.redis import RedisDriver
from jobpool.errors import JobEncodeError, PayloadTooLargeError

QM_BACKENDS = ("memory", "redis", "cluster", "sentinel")  # see tests/conftest.py


def test_push_pop_process_completes(qm, tmp_path):
    job_id = qm.push(Record(str(tmp_path / "out")))
    assert qm.get_job_status(job_id)["status"] == "queued"
    delivery = qm.pop()
    assert delivery.id == job_id
    assert qm.get_job_status(job_id)["status"] == "processing"
    assert Worker(qm).process(delivery) is Outcome.COMPLETED
    status = qm.get_job_status(job_id)
    assert status["status"] == "completed"
    assert status["attempts"] == 1 and status["max_tries"] == 3
    assert status["queue"] == "default" and status["job"] == "Record"
    assert isinstance(status["updated_at"], float)
    assert abs(status["updated_at"] - time.time()) < 5
    assert runs(tmp_path / "out") == ["ran"]


def test_status_of_unknown_or_malformed_id_is_none(qm):
    assert qm.get_job_status("default:nope") is None
    assert qm.get_job_status("no-colon") is None


def test_fifo_order_within_a_queue(qm, tmp_path):
    ids = [qm.push(Record(str(tmp_path / "out"), str(i))) for i in range(5)]
    assert [qm.pop().id for _ in ids] == ids


def test_queues_are_independent(qm, tmp_path):
    a = qm.push(Record(str(tmp_path / "a")), "alpha")
    b = qm.push(Record(str(tmp_path / "b")), "beta")
    assert qm.size("alpha") == 1 and qm.size("beta") == 1
    assert qm.pop("beta").id == b
    assert qm.pop("beta") is None
    assert qm.pop("alpha").id == a
    assert qm.get_job_status(b)["queue"] == "beta"


def test_failure_retries_with_exponential_backoff_then_fails_once(qm, tmp_path):
    path = str(tmp_path / "out")
    job = Fail(path)
    job.retry_delay, job.retry_jitter = (
        0.2,
        False,
    )  # the exact schedule (jitter: test_retry_control)
    job_id = qm.push(job)
    worker = Worker(qm)
    waits = []
    for attempt in (1, 2):
        assert worker.process(qm.pop()) is Outcome.RETRYING
        status = qm.get_job_status(job_id)
        assert status["status"] == "retrying" and status["attempts"] == attempt
        assert status["error"] == "RuntimeError: boom"
        assert "Traceback" in status["traceback"]
        waits.append(status["due_at"] - status["updated_at"])
        assert qm.pop() is None  # not before its due time
        delivery = qm.pop(timeout=2)
        assert delivery is not None and delivery.id == job_id
        assert time.time() >= status["due_at"]
        _requeue_for_next_attempt(qm, worker, delivery)
    assert waits[0] == pytest.approx(0.2, abs=0.02)
    assert waits[1] == pytest.approx(0.4, abs=0.02)
    assert worker.process(qm.pop()) is Outcome.FAILED
    status = qm.get_job_status(job_id)
    assert status["status"] == "failed" and status["attempts"] == 3
    assert runs(path) == ["failed:RuntimeError:boom"]
    assert [r["id"] for r in qm.failed_jobs()] == [job_id]


def _requeue_for_next_attempt(qm, worker, delivery):
    """Hand the popped job back so the next pop() in the loop claims it as the next attempt."""
    worker.session.release(delivery.worker_id, delivery.queue, [delivery.id])


def test_instance_max_tries_overrides_class_default(qm, tmp_path):
    job = Fail(str(tmp_path / "out"))
    job.max_tries = 1
    job_id = qm.push(job)
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    assert qm.get_job_status(job_id)["max_tries"] == 1


def test_instance_max_tries_five_runs_five_times(qm, tmp_path):
    job = Fail(str(tmp_path / "out"))
    job.max_tries, job.retry_delay = 5, 0
    job_id = qm.push(job)
    worker, outcomes = Worker(qm), []
    while (delivery := qm.pop(timeout=1)) is not None:
        outcomes.append(worker.process(delivery))
    assert outcomes == [Outcome.RETRYING] * 4 + [Outcome.FAILED]
    assert qm.get_job_status(job_id)["attempts"] == 5


@pytest.mark.timing
def test_later_waits_until_due(qm, tmp_path):
    job_id = qm.later(Record(str(tmp_path / "out")), 0.3)
    status = qm.get_job_status(job_id)
    assert status["status"] == "delayed"
    assert qm.pop() is None
    delivery = qm.pop(timeout=2)
    assert delivery.id == job_id
    assert time.time() >= status["due_at"]


@pytest.mark.timing
@pytest.mark.parametrize(
    "delay",
    [
        dt.timedelta(milliseconds=200),
        lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(milliseconds=200),
    ],
)
def test_later_takes_timedelta_and_aware_datetime(qm, tmp_path, delay):
    delay = delay() if callable(delay) else delay
    job_id = qm.later(Record(str(tmp_path / "out")), delay)
    status = qm.get_job_status(job_id)
    assert status["status"] == "delayed"
    assert 0.1 < status["due_at"] - status["created_at"] <= 0.25


def test_later_refuses_naive_datetime(qm, tmp_path):
    with pytest.raises(JobEncodeError, match="aware datetime"):
        qm.later(Record(str(tmp_path / "out")), dt.datetime.now())


def test_push_many_returns_ids_in_order(qm, tmp_path):
    ids = qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(2500)])
    assert len(set(ids)) == 2500
    assert qm.size() == 2500
    assert qm.pop().id == ids[0]


def test_push_many_checks_every_job_before_storing_any(qm, tmp_path):
    good = Record(str(tmp_path / "out"))
    bad = Record(str(tmp_path / "out"))
    bad.when = object()
    with pytest.raises(JobEncodeError, match="attribute 'when'"):
        qm.push_many([good, bad])
    assert qm.size() == 0


def test_unencodable_attribute_is_refused_at_push(qm, tmp_path):
    job = Record(str(tmp_path / "out"))
    job.created = dt.datetime.now()
    with pytest.raises(JobEncodeError, match="'created'.*datetime"):
        qm.push(job)
    job.created = float("nan")
    with pytest.raises(JobEncodeError, match="non-finite"):
        qm.push(job)
    assert qm.size() == 0


def test_payload_above_max_payload_is_refused(qm, tmp_path):
    qm.max_payload = 1000
    with pytest.raises(PayloadTooLargeError, match="max_payload"):
        qm.push(Record(str(tmp_path / "out"), "x" * 2000))
    assert qm.size() == 0


def test_push_refuses_non_job_and_bad_queue_names(qm):
    with pytest.raises(JobEncodeError, match="Job instance"):
        qm.push({"not": "a job"})
    with pytest.raises(ValueError, match="invalid queue name"):
        qm.push(Record("/dev/null"), "bad{name}")


def test_job_queue_class_attribute_picks_the_queue(qm, tmp_path):
    class Mail(Record):
        queue = "mail"

    job_id = qm.push(Mail(str(tmp_path / "out")))
    assert job_id.startswith("mail:")
    assert qm.pop("mail").id == job_id


def test_unknown_class_fails_without_running_and_worker_lives(qm, tmp_path):
    job_id = qm.push(Record(str(tmp_path / "out")))
    delivery = qm.pop()
    forged = type(delivery)(
        delivery.id,
        delivery.queue,
        b'{"job":"os:system","attrs":{}}',
        delivery.record,
        delivery.worker_id,
    )
    assert Worker(qm).process(forged) is Outcome.FAILED
    status = qm.get_job_status(job_id)
    assert status["status"] == "failed" and "unknown job class 'os:system'" in status["error"]
    assert runs(tmp_path / "out") == []


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"job": "tests.jobs:Rec', "not valid JSON"),
        (b"\x80\x04\x95pickle", "not valid JSON"),
        (b'{"attrs": {}}', "no job class name"),
        (b'{"job": "jobs:Record"}', "no attrs"),
    ],
)
def test_bad_payloads_fail_with_a_clear_error(qm, tmp_path, body, message):
    job_id = qm.push(Record(str(tmp_path / "out")))
    d = qm.pop()
    bad = type(d)(d.id, d.queue, body, d.record, d.worker_id)
    assert Worker(qm).process(bad) is Outcome.FAILED
    assert message in qm.get_job_status(job_id)["error"]


def test_missing_attribute_fails_the_job(qm, tmp_path):
    job_id = qm.push(Record(str(tmp_path / "out")))
    d = qm.pop()
    bad = type(d)(d.id, d.queue, b'{"job":"jobs:Record","attrs":{}}', d.record, d.worker_id)
    assert Worker(qm).process(bad) is Outcome.RETRYING
    assert "AttributeError" in qm.get_job_status(job_id)["error"]


class ExitingJob(Job):
    max_tries = 1

    def __init__(self, exc: str):
        self.exc = exc

    def handle(self) -> None:
        raise {"exit": SystemExit(3), "interrupt": KeyboardInterrupt()}[self.exc]


@pytest.mark.parametrize("exc, name", [("exit", "SystemExit"), ("interrupt", "KeyboardInterrupt")])
def test_systemexit_and_keyboardinterrupt_in_handle_fail_the_job_only(qm, exc, name):
    job_id = qm.push(ExitingJob(exc))
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    assert qm.get_job_status(job_id)["error"].startswith(name)


class HookRaises(Job):
    max_tries = 1

    def handle(self) -> None:
        raise ValueError("first")

    def failed(self, exc: BaseException) -> None:
        raise RuntimeError("hook broke")


def test_exception_in_failed_hook_is_logged_not_fatal(qm, caplog):
    job_id = qm.push(HookRaises())
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    assert qm.get_job_status(job_id)["status"] == "failed"
    assert "failed() hook raised" in caplog.text and "hook broke" in caplog.text


def test_follow_up_job_pushed_from_handle(qm, tmp_path):
    qm.push(FollowUp(str(tmp_path / "out")))
    worker = Worker(qm)
    worker.process(qm.pop())
    follow = qm.pop()
    assert follow is not None and follow.job_class == "Record"
    worker.process(follow)
    assert runs(tmp_path / "out") == ["follow-up"]


def test_failed_jobs_retry_one_and_all_and_delete(qm, tmp_path):
    worker = Worker(qm)
    ids = []
    for _ in range(3):
        job = Fail(str(tmp_path / "out"))
        job.max_tries = 1
        ids.append(qm.push(job))
        worker.process(qm.pop())
    assert qm.counts()["failed"] == 3
    assert qm.retry_failed(ids[0]) is True
    assert qm.get_job_status(ids[0])["status"] == "queued"
    assert qm.get_job_status(ids[0])["attempts"] == 0
    assert qm.retry_failed(ids[0]) is False  # no longer failed
    assert qm.delete(ids[1]) is True
    assert qm.get_job_status(ids[1]) is None
    assert qm.retry_all_failed() == 1
    assert qm.counts() == {"ready": 2, "delayed": 0, "in_flight": 0, "failed": 0}


def test_delete_refuses_a_job_in_progress(qm, tmp_path):
    job_id = qm.push(Record(str(tmp_path / "out")))
    qm.pop()
    with pytest.raises(ValueError, match="being processed"):
        qm.delete(job_id)


def test_release_hands_back_without_counting_the_attempt(qm, tmp_path):
    job_id = qm.push(Record(str(tmp_path / "out")))
    d = qm.pop()
    session = qm.driver.session()
    assert session.release(d.worker_id, d.queue, [d.id]) == 1
    session.close()
    status = qm.get_job_status(job_id)
    assert status["status"] == "queued" and status["attempts"] == 0


def test_release_of_a_running_job_asked_to_cancel_ends_it_cancelled(qm, tmp_path):
    """A second SIGTERM hands back the job the worker was running; if it had been cancelled
    meanwhile, it ends cancelled there and then instead of going back to run again."""
    job_id = qm.push(Record(str(tmp_path / "out")))
    d = qm.pop()
    assert qm.cancel(job_id)  # running: asked to stop
    session = qm.driver.session()
    assert session.release(d.worker_id, d.queue, [d.id]) == 0
    session.close()
    assert qm.get_job_status(job_id)["status"] == "cancelled"
    assert qm.pop() is None


def test_dead_worker_jobs_are_requeued_and_count_as_attempts(qm, tmp_path):
    job = Record(str(tmp_path / "out"))
    job.max_tries = 2
    job_id = qm.push(job)
    d = qm.pop()
    assert qm.driver.requeue_worker(
        "default", d.worker_id, "worker killed by signal 9"
    ) == Requeued(1)
    status = qm.get_job_status(job_id)
    assert status["status"] == "queued" and status["attempts"] == 1
    assert status["error"] == "worker killed by signal 9"
    d = qm.pop()
    assert d.attempts == 2
    requeued = qm.driver.requeue_worker("default", d.worker_id, "worker killed by signal 9")
    assert requeued == Requeued(1, ((job_id, "Record"),))  # back once more, for its hook
    status = qm.get_job_status(job_id)
    assert status["status"] == "failed" and status["hook"] == "pending"


def test_failed_hook_runs_once_in_a_worker_after_deaths(qm, tmp_path):
    path = str(tmp_path / "out")
    job = Fail(path)
    job.max_tries = 1
    job_id = qm.push(job)
    d = qm.pop()
    qm.driver.requeue_worker("default", d.worker_id, "worker killed by signal 9")
    hook = qm.pop()
    assert hook.hook and hook.hook_started  # first of its batch: the claim began it
    assert Worker(qm).process(hook) is Outcome.FAILED
    assert runs(path) == ["failed:WorkerLostError:worker", "killed", "by", "signal", "9"]
    status = qm.get_job_status(job_id)
    assert status["status"] == "failed" and "hook" not in status
    assert qm.pop() is None


def _fail_by_a_death(qm, path):
    """Push a job whose only attempt dies with its worker: failed, its failed() hook pending."""
    job = Fail(path)
    job.max_tries = 1
    job_id = qm.push(job)
    qm.driver.requeue_worker("default", qm.pop().worker_id, "worker killed by signal 9")
    return job_id


def _claim_a_hook_behind_a_job(qm, tmp_path):
    """Worker w2 claims, in one batch, a job and then the failed() hook entry of another."""
    session = qm.driver.session()
    first = qm.push(Record(str(tmp_path / "out")))
    session.fetch("default", "w1", count=1)  # held, so that the hook entry queues behind it
    hook = _fail_by_a_death(qm, str(tmp_path / "hook"))
    session.release("w1", "default", [first])  # back to the front: [first, hook]
    fetched = session.fetch("default", "w2", count=2)
    assert [d.id for d in fetched.deliveries] == [first, hook]
    return session, fetched.deliveries


def test_a_hook_claimed_behind_a_job_that_kills_its_worker_still_runs(qm, tmp_path):
    _, (first, hook) = _claim_a_hook_behind_a_job(qm, tmp_path)
    requeued = qm.driver.requeue_worker("default", "w2", "timeout after 1 s")
    status = qm.get_job_status(hook.id)
    assert status["hook"] == "pending" and "hook_error" not in status
    assert status["error"] == "worker killed by signal 9"  # not the error of the job ahead
    assert requeued == Requeued(2)  # both go back: nothing failed for good here
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.COMPLETED  # the job that timed out, again
    assert worker.process(qm.pop()) is Outcome.FAILED  # then the hook, in a worker
    assert runs(tmp_path / "hook") == [
        "failed:WorkerLostError:worker",
        "killed",
        "by",
        "signal",
        "9",
    ]
    status = qm.get_job_status(hook.id)
    assert "hook" not in status and "hook_error" not in status
    assert qm.counts()["failed"] == 1


def test_a_worker_that_dies_inside_a_failed_hook_drops_only_that_hook(qm, tmp_path):
    session, (first, hook) = _claim_a_hook_behind_a_job(qm, tmp_path)
    session.complete(first)
    assert session.begin(hook).record["hook"] == 2  # started (with the ack, on Redis)
    session.flush()
    assert qm.get_job_status(hook.id)["hook"] == "started"
    assert qm.driver.requeue_worker("default", "w2", "timeout after 1 s") == Requeued(0)
    status = qm.get_job_status(hook.id)
    assert "hook" not in status and status["hook_error"] == "timeout after 1 s"
    assert status["error"] == "worker killed by signal 9"
    assert qm.pop() is None  # a poison hook does not loop
    assert runs(tmp_path / "hook") == []


def test_a_last_attempt_that_dies_with_its_worker_fails_like_one_that_raised(qm, tmp_path):
    raised = Fail(str(tmp_path / "out"))
    raised.max_tries = 1
    raised_id = qm.push(raised)
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED
    died_id = qm.push(raised)
    d = qm.pop()
    requeued = qm.driver.requeue_worker("default", d.worker_id, "worker killed by signal 9")
    assert requeued == Requeued(1, ((died_id, "Fail"),))
    assert qm.get_job_status(died_id)["hook"] == "pending"
    assert Worker(qm).process(qm.pop()) is Outcome.FAILED  # its failed() hook
    a, b = qm.get_job_status(raised_id), qm.get_job_status(died_id)
    assert set(b) == set(a) - {"traceback"}  # no traceback: nothing raised
    assert (b["status"], b["attempts"], b["error"]) == ("failed", 1, "worker killed by signal 9")
    assert b["expires_at"] - b["finished_at"] == pytest.approx(a["expires_at"] - a["finished_at"])
    assert [r["id"] for r in qm.failed_jobs()] == [raised_id, died_id]
    assert qm.counts()["failed"] == 2
    if isinstance(qm.driver, RedisDriver):  # the memory driver keeps no per-minute counts
        assert qm.driver.stats("default")["failed_last_minute"] == 2


@pytest.mark.parametrize("backend", ["memory", "redis", "cluster"])
def test_finished_records_expire_after_their_ttl(request, tmp_path, backend):
    fixture = {"memory": None, "redis": "redis_url", "cluster": "redis_cluster"}[backend]
    conn = None if fixture is None else request.getfixturevalue(fixture)
    qm = QueueManager(conn, completed_ttl=0.3, failed_ttl=0.6)
    done = qm.push(Record(str(tmp_path / "out")))
    Worker(qm).process(qm.pop())
    job = Fail(str(tmp_path / "out"))
    job.max_tries = 1
    failed = qm.push(job)
    Worker(qm).process(qm.pop())
    assert qm.get_job_status(done)["status"] == "completed"
    assert qm.get_job_status(failed)["status"] == "failed"
    wait_until(lambda: qm.get_job_status(done) is None, timeout=3)
    assert qm.get_job_status(failed) is not None  # a failed record outlives a completed one
    wait_until(lambda: qm.get_job_status(failed) is None, timeout=3)
    qm.close()


def test_a_batch_claim_begins_only_its_first_job(qm, tmp_path):
    ids = qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(6)])
    session = qm.driver.session()
    fetched = session.fetch("default", "w1", count=4)
    assert [d.id for d in fetched.deliveries] == ids[:4]
    statuses = [qm.get_job_status(i)["status"] for i in ids[:4]]
    assert statuses == ["processing", "queued", "queued", "queued"]
    second = session.begin(fetched.deliveries[1])
    session.flush()
    assert second.attempts == 1
    assert qm.get_job_status(ids[1])["status"] == "processing"
    assert qm.get_job_status(ids[1])["attempts"] == 1


def test_a_batch_claim_takes_no_more_than_a_fair_share(qm, tmp_path):
    qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(3)])
    session = qm.driver.session()
    first = session.fetch("default", "w1", count=8)
    assert len(first.deliveries) == 3  # alone: it may take all that waits
    qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(3)])
    second = session.fetch("default", "w2", count=8)
    assert len(second.deliveries) == 1  # 3 waiting, 2 workers holding: one each, rounded down


def test_a_dead_worker_costs_an_attempt_only_to_the_job_it_ran(qm, tmp_path):
    ids = qm.push_many([Record(str(tmp_path / "out"), str(i)) for i in range(3)])
    session = qm.driver.session()
    fetched = session.fetch("default", "w1", count=3)
    assert len(fetched.deliveries) == 3
    requeued = qm.driver.requeue_worker("default", "w1", "worker killed by signal 9 (SIGKILL)")
    assert requeued == Requeued(3)
    first, *rest = (qm.get_job_status(i) for i in ids)
    assert first["status"] == "queued" and first["attempts"] == 1
    assert first["error"] == "worker killed by signal 9 (SIGKILL)"
    assert all(r["status"] == "queued" and r["attempts"] == 0 and "error" not in r for r in rest)
    assert [qm.pop().id for _ in ids] == ids  # back at the front, in order


def test_worker_run_with_prefetch_completes_every_job_in_order(qm, tmp_path):
    path = str(tmp_path / "out")
    ids = qm.push_many([Record(path, str(i)) for i in range(20)])
    worker = Worker(qm, prefetch=8)
    assert worker.run(burst=True, install_signals=False, keep_lease=False) == 20
    assert runs(path) == [str(i) for i in range(20)]
    assert all(qm.get_job_status(i)["status"] == "completed" for i in ids)
    assert all(qm.get_job_status(i)["attempts"] == 1 for i in ids)


def test_worker_claims_fewer_jobs_at_once_when_they_are_slow(qm, tmp_path):
    """Batches are sized to about BATCH_SECONDS of work, up to `prefetch`."""
    from jobpool.worker.loop import BATCH_SECONDS

    worker = Worker(qm, prefetch=32)
    assert worker._batch_size() == 8  # before anything is known
    for _ in range(20):
        worker._learn(4, 4 * 0.0001)  # 0.1 ms jobs
    assert worker._batch_size() == 32
    for _ in range(20):
        worker._learn(2, 2 * BATCH_SECONDS / 5)  # five jobs fill a batch's time
    assert worker._batch_size() in (4, 5)
    for _ in range(20):
        worker._learn(1, 2.0)  # jobs slower than a batch's time: one at a time
    assert worker._batch_size() == 1
