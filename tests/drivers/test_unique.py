"""Unique jobs on both drivers: a key held while its job is queued, delayed, retrying or
processing, released when it completes or fails, and never held past `unique_for`."""

from __future__ import annotations

import time

import pytest
from jobs import Fail, Once, Record

from jobpool import Outcome, Worker, job
from jobpool.errors import JobEncodeError

QM_BACKENDS = ("memory", "redis", "cluster")  # see tests/conftest.py

_NOT_JSON = object()


@job(unique=True)
def charge(order: int, amount: int = 2, *, note: str = "") -> None:
    """A unique function: one charge per call while it waits or runs."""


@job(unique=True)
def tally(first: int, *rest: int, when: object = _NOT_JSON, **labels: str) -> None:
    """A unique function with variadic arguments and a default JSON cannot store."""


def test_a_second_push_with_the_key_returns_the_first_job(qm, tmp_path):
    path = str(tmp_path / "out")
    first = qm.push(Record(path, "a"), unique_key="order:42")
    assert qm.push(Record(path, "b"), unique_key="order:42") == first
    assert qm.size() == 1
    assert qm.get_job_status(first)["unique_key"] == "order:42"
    other = qm.push(Record(path, "c"), unique_key="order:43")
    assert other != first and qm.size() == 2


def test_push_unique_tells_a_new_job_from_a_duplicate(qm, tmp_path):
    path = str(tmp_path / "out")
    job_id, created = qm.push_unique(Record(path), unique_key="order:42", unique_for=60)
    assert created is True
    assert qm.push_unique(Record(path), unique_key="order:42") == (job_id, False)
    assert qm.push(Record(path)) != job_id  # a push without the key is not unique


def test_later_holds_the_key_while_delayed(qm, tmp_path):
    path = str(tmp_path / "out")
    first = qm.later(Record(path), 60, unique_key="report:7")
    assert qm.get_job_status(first)["status"] == "delayed"
    assert qm.later(Record(path), 60, unique_key="report:7") == first
    assert qm.push(Record(path), unique_key="report:7") == first
    assert qm.push_unique(Record(path), unique_key="report:7", delay=5) == (first, False)


def test_the_key_is_held_while_processing_and_released_when_completed(qm, tmp_path):
    path = str(tmp_path / "out")
    first = qm.push(Record(path), unique_key="k")
    delivery = qm.pop()
    assert qm.get_job_status(first)["status"] == "processing"
    assert qm.push(Record(path), unique_key="k") == first
    assert Worker(qm).process(delivery) is Outcome.COMPLETED
    second, created = qm.push_unique(Record(path), unique_key="k")
    assert created and second != first


def test_the_key_is_held_while_retrying_and_released_when_failed_for_good(qm, tmp_path):
    job = Fail(str(tmp_path / "out"))
    job.max_tries = 2
    first = qm.push(job, unique_key="k")
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.RETRYING
    assert qm.push(Fail(str(tmp_path / "out")), unique_key="k") == first
    assert worker.process(qm.pop(timeout=2)) is Outcome.FAILED
    assert qm.push_unique(Fail(str(tmp_path / "out")), unique_key="k")[1] is True


def test_unique_for_caps_how_long_the_key_is_held(qm, tmp_path):
    path = str(tmp_path / "out")
    first = qm.push(Record(path), unique_key="k", unique_for=0.2)
    assert qm.push(Record(path), unique_key="k") == first
    time.sleep(0.3)  # the hold must lapse: time itself has to pass
    second = qm.push(Record(path), unique_key="k")
    assert second != first
    assert qm.size() == 2  # the first job still waits: only its hold on the key lapsed


def test_a_unique_class_is_keyed_by_class_and_arguments(qm, tmp_path):
    path = str(tmp_path / "out")
    first = qm.push(Once(path, 1))
    assert qm.push(Once(path, 1)) == first
    assert qm.push(Once(path, 2)) != first
    swapped = Once.__new__(Once)
    swapped.order, swapped.path = 1, path  # the same arguments set in another order
    assert qm.push(swapped) == first
    assert qm.push_unique(Once(path, 1)) == (first, False)
    assert qm.push(Once(path, 1), unique_key="explicit") != first  # an explicit key wins


def test_a_unique_function_is_keyed_by_the_call_whatever_its_spelling(qm):
    first = charge.push(1, 2, manager=qm)
    assert charge.push(1, amount=2, manager=qm) == first  # by keyword
    assert charge.push(1, manager=qm) == first  # the default
    assert charge.push(order=1, manager=qm) == first
    assert charge.push(1, 2, note="", manager=qm) == first  # a keyword-only default
    assert qm.push_unique(charge.job(amount=2, order=1)) == (first, False)
    other = charge.push(1, 3, manager=qm)
    assert other != first and charge.push(1, amount=3, manager=qm) == other
    assert charge.push(1, note="x", manager=qm) not in (first, other)
    assert qm.size() == 3


def test_a_unique_functions_variadic_arguments_and_unstorable_defaults(qm):
    first = tally.push(1, 2, 3, colour="red", manager=qm)
    assert tally.push(1, 2, 3, colour="red", manager=qm) == first
    assert tally.push(1, 3, 2, colour="red", manager=qm) != first  # *rest keeps its order
    assert tally.push(1, 2, 3, colour="blue", manager=qm) != first
    bare = tally.push(1, manager=qm)  # `when` defaults to what JSON cannot store
    assert tally.push(1, manager=qm) == bare
    assert tally.push(1, when=None, manager=qm) != bare
    assert qm.size() == 5


def test_push_unique_without_a_key_uses_class_and_arguments(qm, tmp_path):
    path = str(tmp_path / "out")
    job_id, created = qm.push_unique(Record(path, "x"))
    assert created and qm.push_unique(Record(path, "x")) == (job_id, False)
    assert qm.push(Record(path, "x")) != job_id  # Record is not unique by itself


def test_push_many_returns_the_existing_ids_of_duplicates(qm, tmp_path):
    path = str(tmp_path / "out")
    held = qm.push(Once(path, 1))
    ids = qm.push_many([Once(path, 1), Record(path, "a"), Once(path, 2), Once(path, 2)])
    assert ids[0] == held and ids[2] == ids[3] and len(set(ids)) == 3
    assert qm.size() == 3


@pytest.mark.parametrize(
    "options, message",
    [
        ({"unique_key": ""}, "unique_key must be a non-empty string"),
        ({"unique_key": 42}, "unique_key must be a non-empty string"),
        ({"unique_key": "k", "unique_for": 0}, "unique_for must be a number > 0"),
    ],
)
def test_bad_unique_options_are_refused_before_anything_is_stored(qm, tmp_path, options, message):
    with pytest.raises(JobEncodeError, match=message):
        qm.push(Record(str(tmp_path / "out")), **options)
    assert qm.size() == 0


def test_completing_a_job_deletes_its_unique_key_at_once(redis_qm, redis_client, tmp_path):
    redis_qm.push(Record(str(tmp_path / "out")), unique_key="k")
    key = redis_qm.driver.keys("default").unique("k")
    assert redis_client.exists(key) == 1
    assert Worker(redis_qm).process(redis_qm.pop()) is Outcome.COMPLETED
    assert redis_client.exists(key) == 0  # not left to expire after unique_for
