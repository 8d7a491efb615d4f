"""A worker serving several queues, on both drivers: strict priority takes a lower queue only
when the higher ones are empty; it waits on all of them; a paused one is skipped."""

from __future__ import annotations

import threading
import time

import pytest
from jobs import Record, runs

from jobpool import Worker
from jobpool.worker.threaded import ThreadedWorker


@pytest.mark.parametrize("threads", [1, 2], ids=["one_job", "threaded"])
def test_strict_priority_runs_higher_queues_first(qm, tmp_path, threads):
    path = tmp_path / "order"
    qm.push_many([Record(str(path), "low") for _ in range(3)], "low")
    qm.push_many([Record(str(path), "urgent") for _ in range(3)], "urgent")
    qm.push_many([Record(str(path), "default") for _ in range(3)], "default")
    serve = ["urgent", "default", "low"]
    worker = (
        Worker(qm, serve=serve, prefetch=1)
        if threads == 1
        else ThreadedWorker(qm, serve=serve, concurrency=threads, prefetch=1)
    )
    worker.run(burst=True, install_signals=False, keep_lease=False)
    done = runs(path)
    assert sorted(done) == sorted(["urgent"] * 3 + ["default"] * 3 + ["low"] * 3)
    if threads == 1:
        assert done == ["urgent"] * 3 + ["default"] * 3 + ["low"] * 3
    else:  # two at a time: a lower queue is only reached once the higher ones are empty
        assert done.index("low") >= 5 and done.index("default") >= 2


def test_an_idle_worker_wakes_for_a_push_to_any_queue_it_serves(qm, tmp_path):
    path = tmp_path / "out"
    worker = Worker(qm, serve=["urgent", "low"])
    thread = threading.Thread(
        target=worker.run, kwargs={"install_signals": False, "keep_lease": False}, daemon=True
    )
    thread.start()
    try:
        time.sleep(0.3)  # idle, waiting on both queues
        pushed = time.monotonic()
        qm.push(Record(str(path), "low"), "low")
        while not runs(path) and time.monotonic() - pushed < 5:
            time.sleep(0.005)
        assert runs(path) == ["low"]
        assert time.monotonic() - pushed < 0.5  # woken by the push, not by a tick
    finally:
        worker.stop()
        thread.join(10)


def test_a_paused_queue_is_skipped_and_the_others_still_run(qm, tmp_path):
    path = tmp_path / "out"
    qm.pause("urgent")
    qm.push(Record(str(path), "urgent"), "urgent")
    qm.push(Record(str(path), "low"), "low")
    Worker(qm, serve=["urgent", "low"]).run(burst=True, install_signals=False, keep_lease=False)
    assert runs(path) == ["low"]
    assert qm.counts("urgent")["ready"] == 1


class _BusyOnWaking(Worker):
    """Urgent work lands between the end of its idle wait and its next claim (pushed here, at
    that very moment, to make the race certain)."""

    def __init__(self, *args, push, **kw):
        super().__init__(*args, **kw)
        self._push = push

    def _idle(self, next_due):
        super()._idle(next_due)
        if self._push is not None:
            self._push()
            self._push = None


def test_a_job_that_ends_an_idle_wait_runs_before_work_pushed_after_it(
    redis_qm, tmp_path, redis_client
):
    # The job that wakes an idle worker is already in that worker's list for its queue, where
    # no other worker can take it: the worker claims it first, even from a lower queue.
    path = tmp_path / "order"
    urgent = lambda: redis_qm.push_many(  # noqa: E731
        [Record(str(path), "urgent") for _ in range(3)], "urgent"
    )
    worker = _BusyOnWaking(redis_qm, serve=["urgent", "low"], push=urgent)
    thread = threading.Thread(
        target=worker.run, kwargs={"install_signals": False, "keep_lease": False}, daemon=True
    )
    thread.start()
    try:
        time.sleep(0.3)  # idle, waiting on both queues
        redis_qm.push(Record(str(path), "low"), "low")
        deadline = time.monotonic() + 5
        while len(runs(path)) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert runs(path) == ["low", "urgent", "urgent", "urgent"]
    finally:
        worker.stop()
        thread.join(10)


def test_a_wait_names_the_queues_a_job_came_to(redis_qm):
    session = redis_qm.driver.session()
    came: list[list[str]] = []
    waiting = threading.Thread(
        target=lambda: came.append(session.wait(["urgent", "low"], 5.0, None, "w1")), daemon=True
    )
    waiting.start()
    time.sleep(0.2)
    redis_qm.push(Record("/dev/null"), "low")
    waiting.join(5)
    assert came == [["low"]]
    assert session.wait(["urgent", "low"], 0.1, None, "w1") == []  # a timeout names none
