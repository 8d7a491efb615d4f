"""The masters' history writer (drivers/redis/history.py) on its own: what it writes, and
that a failing Redis never reaches the master's loop."""

from __future__ import annotations

import logging
import time

import pytest
import redis

from jobpool import QueueManager
from jobpool.drivers.redis import history


class _Down:
    def pipeline(self, transaction: bool = False) -> _Down:
        return self

    def hincrby(self, *args: object) -> None: ...
    def expire(self, *args: object) -> None: ...

    def execute(self) -> None:
        raise redis.ConnectionError("Connection refused")


def test_a_failing_redis_keeps_the_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    recorder = history.HistoryRecorder(_Down(), "jobpool")
    recorder.add("default", "A", "completed", 0.01)
    with caplog.at_level(logging.WARNING, logger="jobpool.history"):
        recorder.flush(10.0)
        recorder.add("default", "A", "completed", 0.01)
        recorder.flush(20.0)
    assert recorder.pending == {("default", "A", "completed", history.bucket(0.01)): 2}
    assert len([r for r in caplog.records if "cannot write the job history" in r.message]) == 1


def test_one_pipeline_per_flush_at_most_every_half_second(redis_qm: QueueManager) -> None:
    recorder = history.recorder_for(redis_qm.driver)
    recorder.add("default", "A\nB", "completed", 0.25)
    recorder.flush(100.0)
    recorder.add("default", "A\nB", "failed", 0.5)
    recorder.flush(100.0 + history.FLUSH_EVERY / 2)  # too soon: kept
    assert recorder.pending and recorder.next_flush() == 100.0 + history.FLUSH_EVERY
    recorder.flush(100.0 + history.FLUSH_EVERY)
    assert not recorder.pending and recorder.next_flush() is None
    keys = redis_qm.driver.keys("default")  # type: ignore[attr-defined]
    minute = int(time.time() // 60)
    periods = history.read(redis_qm.driver.client, keys, "m", minute - 1, minute)  # type: ignore[attr-defined]
    period = history.Period(0)  # the flush's minute may be the one before
    period.total, period.classes = history.add_up(periods)
    assert period.total.outcomes == {"completed": 1, "failed": 1}
    assert period.total.micros == 750_000
    assert period.classes["A B"].outcomes == {"completed": 1, "failed": 1}
    hours = [history.history_key(keys, "h", h) for h in (minute // 60 - 1, minute // 60)]
    ttl = max(redis_qm.driver.client.ttl(key) for key in hours)  # type: ignore[attr-defined]
    assert 7 * 24 * 3600 < ttl <= history.KEEP["h"]
