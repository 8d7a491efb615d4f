"""The Job base class: registry, JSON form, settings; and the small helpers around it."""

from __future__ import annotations

import pickle
import random

import pytest

from jobpool.backoff import Backoff, retry_wait
from jobpool.errors import JobDecodeError, JobEncodeError, UnknownJobError
from jobpool.ids import new_job_id, queue_of
from jobpool.job import Job, decode_job, encode_job, job_settings, registered


class Greet(Job):
    def __init__(self, name: str):
        self.name = name
        self.calls = 0

    def handle(self) -> None:
        self.calls += 1


class Named(Job, name="billing.charge"):
    pass


def test_subclasses_register_under_module_and_qualname():
    assert Greet.job_name == f"{__name__}:Greet"
    assert registered(Greet.job_name) is Greet
    assert registered("billing.charge") is Named


def test_round_trip_rebuilds_without_calling_init(monkeypatch):
    body = encode_job(Greet("ada"))
    monkeypatch.setattr(Greet, "__init__", lambda self, *a: pytest.fail("__init__ called"))
    job = decode_job(body)
    assert isinstance(job, Greet) and job.name == "ada" and job.calls == 0


def test_decode_never_unpickles_or_imports():
    with pytest.raises(JobDecodeError, match="not valid JSON"):
        decode_job(pickle.dumps(Greet("x")))
    with pytest.raises(UnknownJobError, match="'os:system'"):
        decode_job('{"job": "os:system", "attrs": {"command": "true"}}')


def test_base_handle_must_be_overridden():
    with pytest.raises(NotImplementedError, match="Named must define handle"):
        Named().handle()


@pytest.mark.parametrize(
    "attr, value, message",
    [
        ("max_tries", 0, "max_tries must be an int >= 1"),
        ("max_tries", True, "max_tries must be an int >= 1"),
        ("retry_delay", -1, "retry_delay must be a number >= 0"),
        ("timeout", 0, "timeout must be > 0 or None"),
    ],
)
def test_job_settings_are_validated_at_push(attr, value, message):
    job = Greet("x")
    setattr(job, attr, value)
    with pytest.raises(JobEncodeError, match=message):
        job_settings(job)


def test_instance_settings_override_class_defaults():
    job = Greet("x")
    job.max_tries, job.retry_delay = 5, 2
    assert job_settings(job) == (5, 2.0, None)


def test_job_ids_carry_their_queue_and_sort_by_time():
    first, second = new_job_id("emails"), new_job_id("emails")
    assert queue_of(first) == "emails"
    assert first[:18] <= second[:18]
    with pytest.raises(ValueError, match="QUEUE:TOKEN"):
        queue_of("nocolon")


def test_retry_wait_doubles_from_retry_delay():
    assert [retry_wait(60, n, jitter=False) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]


def test_backoff_grows_with_jitter_up_to_the_cap():
    backoff = Backoff(first=0.1, cap=1.0, rng=random.Random(1))
    waits = [backoff.next() for _ in range(8)]
    assert 0.05 <= waits[0] <= 0.1
    assert all(w <= 1.0 for w in waits) and max(waits) >= 0.5
    backoff.reset()
    assert backoff.next() <= 0.1
