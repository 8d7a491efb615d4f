"""The master's look for cancelled jobs (supervisor/cancels.py): at most once per CHECK_EVERY,
one question per queue, and Redis trouble only delays it."""

from __future__ import annotations

import redis

from jobpool.supervisor.cancels import CHECK_EVERY, CancelWatch


class FakeDriver:
    def __init__(self, cancelled: set[str], error: Exception | None = None):
        self.cancelled, self.error = cancelled, error
        self.asked: list[tuple[str, list[str]]] = []

    def cancel_requests(self, queue: str, job_ids: list[str]) -> set[str]:
        self.asked.append((queue, list(job_ids)))
        if self.error is not None:
            raise self.error
        return self.cancelled & set(job_ids)


def test_looks_once_per_interval_and_once_per_queue():
    driver = FakeDriver({"a:1", "b:2"})
    watch = CancelWatch(driver)  # type: ignore[arg-type]
    running = {"a": ["a:1", "a:3"], "b": ["b:2"]}
    assert watch.cancelled(100.0, running) == {"a:1", "b:2"}
    assert driver.asked == [("a", ["a:1", "a:3"]), ("b", ["b:2"])]
    assert watch.cancelled(100.0 + CHECK_EVERY / 2, running) == set()
    assert len(driver.asked) == 2  # not asked again before the interval
    assert watch.cancelled(100.0 + CHECK_EVERY, running) == {"a:1", "b:2"}


def test_an_idle_pool_asks_nothing_and_still_moves_the_next_look():
    driver = FakeDriver(set())
    watch = CancelWatch(driver)  # type: ignore[arg-type]
    assert watch.cancelled(5.0, {}) == set() and driver.asked == []
    assert watch.next_check == 5.0 + CHECK_EVERY  # no busy loop while a killed worker exits


def test_redis_trouble_finds_nothing_and_is_tried_again():
    for error in (redis.ConnectionError("gone"), redis.ResponseError("READONLY replica")):
        watch = CancelWatch(FakeDriver({"a:1"}, error))  # type: ignore[arg-type]
        assert watch.cancelled(1.0, {"a": ["a:1"]}) == set()
        assert watch.next_check == 1.0 + CHECK_EVERY
