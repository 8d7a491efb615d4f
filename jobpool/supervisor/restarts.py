"""Why a worker exited, and how soon its slot may start another (pure logic, unit-tested)."""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from jobpool import defaults, exitcodes

STABLE_AFTER = 60.0  # a worker that lived this long resets its slot's crash backoff


class KillReason(enum.Enum):
    """Why the master SIGKILLed a worker. The value is the exit's `reason`: the word of the
    "worker ... exited" log line and the `reason` label of jobpool_worker_restarts."""

    TIMEOUT = "timeout"  # its job ran past its timeout
    MEMORY = "memory"  # above memory_hard_limit
    SHUTDOWN = "shutdown"  # still busy after graceful_timeout, or an immediate stop
    CANCEL = "cancel"  # its job was cancelled: qm.cancel() asked it to stop (cancels.py)

    @property
    def counts_attempt(self) -> bool:
        """Whether the job the worker held used up an attempt: yes when the job itself was at
        fault (too slow, too big), no when the pool or a person stopped it."""
        return self in (KillReason.TIMEOUT, KillReason.MEMORY)


@dataclass(frozen=True)
class Kill:
    """A kill the master made: why, and what to tell the log and the lost job's record."""

    reason: KillReason
    detail: str  # "timeout after 5 s", "shutdown: stopped at once", ...


@dataclass(frozen=True)
class Exit:
    """What the master makes of a child's end."""

    reason: str  # crash, memory, max_jobs, stopped, or the value of a KillReason
    detail: str  # for the log and, when a job was lost, for its record's error
    crash: bool  # counts towards the slot's backoff
    count_attempt: bool  # the job it held used up an attempt


def describe_exit(
    code: int, *, killed: Kill | None, asked_to_stop: bool, shutting_down: bool
) -> Exit:
    """`code` as from os.waitstatus_to_exitcode(): negative for a signal. A kill by the master
    wins over the code, which is then only the signal of that kill."""
    if killed is not None:
        reason = killed.reason
        return Exit(reason.value, killed.detail, crash=False, count_attempt=reason.counts_attempt)
    if code == exitcodes.RECYCLE_MEMORY:
        return Exit("memory", "worker above memory_limit, replaced after its job", False, False)
    if code == exitcodes.RECYCLE_MAX_JOBS:
        return Exit("max_jobs", "worker ran max_jobs jobs, replaced", False, False)
    if code == exitcodes.RECYCLE_TIMEOUT:
        return Exit("timeout", "a job thread ran past its timeout, replaced", False, False)
    if code == exitcodes.RECYCLE_CANCEL:
        return Exit("cancel", "a job thread was cancelled, replaced", False, False)
    if code == 0 and (asked_to_stop or shutting_down):
        return Exit("stopped", "worker stopped", False, False)
    if code < 0:
        name = _signal_name(-code)
        return Exit("crash", f"worker killed by signal {-code} ({name})", True, True)
    if code == exitcodes.IMPORT_FAILED:
        return Exit("crash", "worker could not import its job modules", True, False)
    return Exit("crash", f"worker exited with code {code}", True, True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


class RestartPolicy:
    """Per-slot crash backoff: the first crash restarts at once, then 1 s, 2 s, ... up to
    `cap`, until a worker of that slot stays up for `STABLE_AFTER` seconds."""

    def __init__(self, cap: float = defaults.RESTART_BACKOFF_MAX):
        self.cap = cap
        self._crashes: dict[tuple[str, int], int] = {}
        self._not_before: dict[tuple[str, int], float] = {}

    def exited(self, slot: tuple[str, int], lived: float, crash: bool, now: float) -> float:
        """Record an exit; returns the delay before the slot's next start."""
        if not crash or lived >= STABLE_AFTER:
            self._crashes.pop(slot, None)
            self._not_before.pop(slot, None)
            return 0.0
        crashes = self._crashes[slot] = self._crashes.get(slot, 0) + 1
        delay = 0.0 if crashes == 1 else min(self.cap, 2.0 ** (crashes - 2))
        self._not_before[slot] = now + delay
        return delay

    def may_start(self, slot: tuple[str, int], now: float) -> bool:
        return now >= self._not_before.get(slot, 0.0)

    def next_start(self, now: float) -> float | None:
        """The earliest future time a backed-off slot may start again, if any."""
        return min((t for t in self._not_before.values() if t > now), default=None)
