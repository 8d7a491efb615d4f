"""lua/schedule_tick.lua (and the memory driver's twin): one tick, one job, whoever asks; missed
ticks caught up or skipped; a new schedule starts at its next tick; a unique job is not pushed
while the previous one waits or runs."""

from __future__ import annotations

import time

from jobs import Record

from jobpool.ids import new_job_id
from jobpool.job import encode_job

GRACE = 60.0


def _job(queue: str = "default") -> tuple[str, str, dict[str, object]]:
    body = encode_job(Record("/dev/null", "tick"))
    return new_job_id(queue), body, {"job": "Record", "queue": queue, "max_tries": 3}


def _tick(qm, tick, catch_up=True, unique=None, name="nightly"):
    return qm.driver.schedule_tick("default", name, tick, _job(), catch_up, GRACE, unique)


def test_a_tick_pushes_one_job_however_often_it_is_claimed(qm):
    tick = float(int(time.time()))
    first = _tick(qm, tick)
    assert first.outcome == "pushed" and first.claimed == tick
    again = [_tick(qm, tick) for _ in range(5)]
    assert {(c.outcome, c.job_id) for c in again} == {("claimed", first.job_id)}
    assert _tick(qm, tick - 1).outcome == "claimed"  # an older tick never pushes after a newer
    assert qm.size() == 1
    record = qm.get_job_status(first.job_id)
    assert record["status"] == "queued" and record["tick_at"] == tick
    state = qm.driver.schedule_state("default", "nightly")
    assert state["run_job"] == first.job_id and state["run_tick"] == tick
    assert state["claimed"] == tick and state["outcome"] == "pushed"


def test_a_new_schedule_skips_a_tick_older_than_the_grace(qm):
    old = float(int(time.time())) - 2 * GRACE
    claim = _tick(qm, old)
    assert claim.outcome == "skipped" and qm.size() == 0
    assert qm.driver.schedule_state("default", "nightly")["claimed"] == old
    assert _tick(qm, old + 1, name="fresh").outcome == "skipped"
    assert _tick(qm, float(int(time.time())), name="fresh").outcome == "pushed"


def test_a_missed_tick_runs_once_with_catch_up_last_and_never_with_none(qm):
    long_ago = float(int(time.time())) - 10 * GRACE
    missed = long_ago + 5 * GRACE
    for name in ("last", "none"):
        assert _tick(qm, long_ago, name=name).outcome == "skipped"  # its first claim
    assert _tick(qm, missed, catch_up=True, name="last").outcome == "pushed"
    assert _tick(qm, missed, catch_up=True, name="last").outcome == "claimed"
    assert _tick(qm, missed, catch_up=False, name="none").outcome == "skipped"
    assert qm.size() == 1
    now = float(int(time.time()))
    assert _tick(qm, now, catch_up=False, name="none").outcome == "pushed"  # on time


def test_a_unique_job_is_not_pushed_while_the_last_one_waits(qm):
    now = float(int(time.time()))
    unique = ("nightly-report", 3600.0)
    first = _tick(qm, now - 2, unique=unique)
    assert first.outcome == "pushed"
    held = _tick(qm, now - 1, unique=unique)
    assert (held.outcome, held.job_id) == ("held", first.job_id)
    assert qm.driver.schedule_state("default", "nightly")["held_by"] == first.job_id
    assert qm.size() == 1
    qm.delete(first.job_id)
    assert _tick(qm, now, unique=unique).outcome == "pushed"
