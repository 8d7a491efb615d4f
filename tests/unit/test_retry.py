"""Retry control, pure logic: the jittered schedule (backoff.retry_wait) and a job's retry policy
(retry.py: retry_on, dont_retry_on, Retry, Fail)."""

from __future__ import annotations

import random
import statistics

import pytest

import jobpool
from jobpool.backoff import retry_wait
from jobpool.errors import JobEncodeError
from jobpool.job import Job
from jobpool.retry import retry_policy


def test_without_jitter_the_schedule_is_exactly_the_original_one():
    waits = [retry_wait(60, n, jitter=False) for n in (1, 2, 3, 4)]
    assert waits == [60, 120, 240, 480]


def test_equal_jitter_is_centred_on_the_original_schedule():
    for n, centre in ((1, 60.0), (2, 120.0), (3, 240.0)):
        assert retry_wait(60, n, random=lambda: 0.5) == centre
        rng = random.Random(n)
        draws = [retry_wait(60, n, random=rng.random) for _ in range(4000)]
        assert statistics.fmean(draws) == pytest.approx(centre, rel=0.03)


def test_equal_jitter_is_half_fixed_half_random():
    assert retry_wait(60, 2, random=lambda: 0.0) == 60.0  # d / 2
    assert retry_wait(60, 2, random=lambda: 0.999999) == pytest.approx(180.0)  # 3d / 2
    rng = random.Random(7)
    draws = [retry_wait(10, 1, random=rng.random) for _ in range(2000)]
    assert 5.0 <= min(draws) < 5.5 and 14.5 < max(draws) <= 15.0


def test_the_cap_bounds_every_delay_and_keeps_them_spread():
    assert retry_wait(60, 10, jitter=False, cap=3600) == 3600
    rng = random.Random(3)
    draws = [retry_wait(60, 10, cap=3600, random=rng.random) for _ in range(2000)]
    assert max(draws) <= 3600 and min(draws) >= 1800
    assert len({round(d) for d in draws}) > 1000  # not all at the cap: no lockstep there either
    # below two thirds of the cap nothing is folded: the centre stays the schedule's
    assert retry_wait(60, 3, cap=3600, random=lambda: 0.999999) == pytest.approx(360.0)


def test_the_default_cap_is_an_hour():
    assert retry_wait(60, 30, jitter=False) == 3600.0


class Plain(Job):
    def handle(self) -> None: ...


class OnlyConnections(Job):
    retry_on = (ConnectionError, TimeoutError)
    dont_retry_on = (ConnectionRefusedError,)

    def handle(self) -> None: ...


def test_a_plain_job_retries_any_exception():
    policy = retry_policy(Plain())
    assert policy.retries(RuntimeError("x")) and policy.retries(KeyError("x"))


def test_retry_on_and_dont_retry_on_choose_what_is_retried():
    policy = retry_policy(OnlyConnections())
    assert policy.retries(ConnectionResetError())  # a subclass of ConnectionError
    assert policy.retries(TimeoutError())
    assert not policy.retries(ValueError())
    assert not policy.retries(ConnectionRefusedError())  # dont_retry_on wins


def test_retry_and_fail_are_decided_before_the_lists():
    policy = retry_policy(OnlyConnections())
    assert policy.decide(jobpool.Retry(delay=5), 1) == (False, 5.0)
    assert policy.decide(jobpool.Fail("no such user"), 1)[0] is True
    assert policy.decide(ValueError("x"), 1)[0] is True
    force, delay = policy.decide(ConnectionResetError(), 1)
    assert force is False and 30 <= delay <= 90  # the jittered schedule: 60 s at the centre


def test_retry_without_a_delay_takes_the_schedule_and_messages_say_why():
    policy = retry_policy(Plain())
    plain = Plain()
    plain.retry_jitter = False
    assert retry_policy(plain).decide(jobpool.Retry(), 2) == (False, 120.0)
    assert str(jobpool.Retry(delay=5)) == "retry requested in 5 s"
    assert str(jobpool.Retry(delay=5, reason="rate limited")) == "rate limited"
    assert str(jobpool.Fail("no such user")) == "no such user"
    assert policy.decide(jobpool.Retry(delay=0), 1) == (False, 0.0)


def test_the_policy_reads_instance_settings_and_the_job_object():
    job = Plain()
    job.retry_delay, job.retry_jitter, job.retry_backoff_max = 10, False, 25
    policy = retry_policy(job)
    assert [policy.decide(RuntimeError(), n)[1] for n in (1, 2, 3)] == [10, 20, 25]
    assert retry_policy(None).decide(RuntimeError(), 1)[0] is False


@pytest.mark.parametrize(
    "attr, value, message",
    [
        ("retry_on", ValueError, "retry_on must be a tuple of exception classes"),
        ("dont_retry_on", ("x",), "dont_retry_on must be a tuple of exception classes"),
        ("retry_jitter", "yes", "retry_jitter must be True or False"),
        ("retry_backoff_max", 0, "retry_backoff_max must be a number > 0"),
    ],
)
def test_retry_settings_are_checked(attr, value, message):
    job = Plain()
    setattr(job, attr, value)
    with pytest.raises(JobEncodeError, match=message):
        retry_policy(job)


def test_retry_and_fail_are_exported_and_the_defaults_are_documented_values():
    assert issubclass(jobpool.Retry, Exception) and issubclass(jobpool.Fail, Exception)
    assert Job.retry_jitter is True and Job.retry_backoff_max == 3600
    assert Job.retry_on is None and Job.dont_retry_on == ()
