"""jobpool.supervisor.restarts as pure logic: what the master makes of each way a worker can end,
and the per-slot crash backoff, with the clock passed in."""

from __future__ import annotations

import pytest

from jobpool import exitcodes
from jobpool.supervisor.restarts import (
    STABLE_AFTER,
    Exit,
    Kill,
    KillReason,
    RestartPolicy,
    describe_exit,
)

SLOT = ("default", 0)


def ended(
    code: int,
    killed: Kill | None = None,
    asked_to_stop: bool = False,
    shutting_down: bool = False,
) -> Exit:
    return describe_exit(
        code, killed=killed, asked_to_stop=asked_to_stop, shutting_down=shutting_down
    )


# -- describe_exit -----------------------------------------------------------------------------


@pytest.mark.parametrize("asked_to_stop", [False, True])
def test_killed_by_a_signal_is_a_crash_that_counts_the_attempt(asked_to_stop):
    assert ended(-9, asked_to_stop=asked_to_stop) == Exit(
        "crash", "worker killed by signal 9 (SIGKILL)", crash=True, count_attempt=True
    )
    assert ended(-11).detail == "worker killed by signal 11 (SIGSEGV)"


def test_killed_by_a_signal_without_a_name_still_says_its_number():
    assert ended(-200).detail == "worker killed by signal 200 (unknown signal)"


@pytest.mark.parametrize(("asked_to_stop", "shutting_down"), [(False, False), (True, True)])
def test_code_90_is_a_memory_recycle_that_neither_crashes_nor_counts(asked_to_stop, shutting_down):
    e = ended(exitcodes.RECYCLE_MEMORY, asked_to_stop=asked_to_stop, shutting_down=shutting_down)
    assert (e.reason, e.crash, e.count_attempt) == ("memory", False, False)
    assert "memory_limit" in e.detail


@pytest.mark.parametrize(("asked_to_stop", "shutting_down"), [(False, False), (True, True)])
def test_code_91_is_a_max_jobs_recycle_that_neither_crashes_nor_counts(
    asked_to_stop, shutting_down
):
    e = ended(exitcodes.RECYCLE_MAX_JOBS, asked_to_stop=asked_to_stop, shutting_down=shutting_down)
    assert (e.reason, e.crash, e.count_attempt) == ("max_jobs", False, False)
    assert "max_jobs" in e.detail


@pytest.mark.parametrize("asked_to_stop", [False, True])
def test_code_4_is_a_crash_that_blames_the_imports_and_counts_no_attempt(asked_to_stop):
    assert ended(exitcodes.IMPORT_FAILED, asked_to_stop=asked_to_stop) == Exit(
        "crash", "worker could not import its job modules", crash=True, count_attempt=False
    )


@pytest.mark.parametrize(("asked_to_stop", "shutting_down"), [(False, False), (True, False)])
def test_code_1_is_a_crash_that_counts_the_attempt_even_when_asked_to_stop(
    asked_to_stop, shutting_down
):
    e = ended(1, asked_to_stop=asked_to_stop, shutting_down=shutting_down)
    assert e == Exit("crash", "worker exited with code 1", crash=True, count_attempt=True)


def test_code_0_unasked_is_a_crash():
    assert ended(0) == Exit("crash", "worker exited with code 0", crash=True, count_attempt=True)


@pytest.mark.parametrize(("asked_to_stop", "shutting_down"), [(True, False), (False, True)])
def test_code_0_when_asked_or_shutting_down_is_a_plain_stop(asked_to_stop, shutting_down):
    e = ended(0, asked_to_stop=asked_to_stop, shutting_down=shutting_down)
    assert e == Exit("stopped", "worker stopped", crash=False, count_attempt=False)


@pytest.mark.parametrize(
    ("killed", "reason", "count_attempt"),
    [
        (Kill(KillReason.TIMEOUT, "timeout after 1 s"), "timeout", True),
        (
            Kill(KillReason.MEMORY, "memory: worker used 157MiB, above memory_hard_limit 80MiB"),
            "memory",
            True,
        ),
        (
            Kill(KillReason.SHUTDOWN, "shutdown: still busy after graceful_timeout"),
            "shutdown",
            False,
        ),
        (Kill(KillReason.SHUTDOWN, "shutdown: stopped at once"), "shutdown", False),
        (Kill(KillReason.CANCEL, "cancelled"), "cancel", False),
    ],
)
@pytest.mark.parametrize("code", [-9, 0, 1])
def test_the_masters_kill_wins_over_the_exit_code(killed, reason, count_attempt, code):
    e = ended(code, killed=killed, asked_to_stop=True)
    assert e == Exit(reason, killed.detail, crash=False, count_attempt=count_attempt)


def test_a_kill_reason_is_the_reason_word_of_the_log_and_the_metrics():
    """The values are the `reason` label of jobpool_worker_restarts: they must not change."""
    assert {r.value for r in KillReason} == {"timeout", "memory", "shutdown", "cancel"}


def test_the_detail_of_a_kill_is_carried_as_it_is():
    """No reason is parsed back out of the text: a detail that reads like another reason
    leaves the reason alone."""
    e = ended(-9, killed=Kill(KillReason.TIMEOUT, "memory: looks like another reason"))
    assert (e.reason, e.detail) == ("timeout", "memory: looks like another reason")


# -- RestartPolicy -----------------------------------------------------------------------------


def crash(policy: RestartPolicy, now: float, slot: tuple[str, int] = SLOT) -> float:
    return policy.exited(slot, lived=0.5, crash=True, now=now)


def test_first_crash_restarts_at_once_then_waits_1_2_4_seconds_up_to_the_cap():
    policy = RestartPolicy(cap=10)
    assert [crash(policy, 100.0) for _ in range(7)] == [0, 1, 2, 4, 8, 10, 10]


def test_may_start_only_once_the_delay_has_passed():
    policy = RestartPolicy()
    crash(policy, 100.0)
    assert policy.may_start(SLOT, 100.0)
    assert crash(policy, 100.0) == 1
    assert not policy.may_start(SLOT, 100.5)
    assert policy.may_start(SLOT, 101.0)


def test_next_start_is_the_earliest_future_start_or_none():
    policy = RestartPolicy()
    assert policy.next_start(100.0) is None
    crash(policy, 100.0, ("a", 0))
    assert policy.next_start(100.0) is None  # the first crash waits for nothing
    crash(policy, 100.0, ("a", 0))  # a.0 may start at 101
    crash(policy, 100.0, ("b", 0))
    crash(policy, 100.0, ("b", 0))
    crash(policy, 100.0, ("b", 0))  # b.0 at 102
    assert policy.next_start(100.0) == 101.0
    assert policy.next_start(101.5) == 102.0
    assert policy.next_start(102.0) is None


def test_slots_back_off_independently():
    policy = RestartPolicy()
    crash(policy, 100.0, ("default", 0))
    assert crash(policy, 100.0, ("default", 0)) == 1
    assert crash(policy, 100.0, ("default", 1)) == 0
    assert crash(policy, 100.0, ("emails", 0)) == 0
    assert policy.may_start(("default", 1), 100.0)
    assert not policy.may_start(("default", 0), 100.0)


def test_a_stable_run_resets_the_backoff():
    policy = RestartPolicy()
    for _ in range(4):
        crash(policy, 100.0)
    assert policy.exited(SLOT, lived=STABLE_AFTER, crash=True, now=200.0) == 0
    assert policy.may_start(SLOT, 200.0) and policy.next_start(200.0) is None
    assert crash(policy, 300.0) == 0  # counted as a first crash again
    assert crash(policy, 300.0) == 1


def test_an_exit_that_is_no_crash_resets_the_backoff():
    policy = RestartPolicy()
    for _ in range(3):
        crash(policy, 100.0)
    assert not policy.may_start(SLOT, 100.0)
    assert policy.exited(SLOT, lived=1.0, crash=False, now=100.0) == 0
    assert policy.may_start(SLOT, 100.0)
    assert crash(policy, 100.0) == 0
