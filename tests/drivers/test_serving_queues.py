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
