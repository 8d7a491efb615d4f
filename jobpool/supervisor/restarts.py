"""Why a worker exited, and how soon its slot may start another (pure logic, unit-tested)."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from jobpool import exitcodes

STABLE_AFTER = 60.0  # a worker that lived this long resets its slot's crash backoff


@dataclass(frozen=True)
class Exit:
    """What the master makes of a child's end."""

    reason: str  # crash, memory, max_jobs, timeout, stopped, shutdown
    detail: str  # for the log and, when a job was lost, for its record's error
    crash: bool  # counts towards the slot's backoff
    count_attempt: bool  # the job it held used up an attempt


def describe_exit(
    code: int, *, kill_reason: str | None, asked_to_stop: bool, shutting_down: bool
) -> Exit:
    """`code` as from os.waitstatus_to_exitcode(): negative for a signal."""
    if kill_reason is not None:
        reason = kill_reason.split(":", 1)[0].split(" ", 1)[0]
        return Exit(reason, kill_reason, crash=False, count_attempt=reason != "shutdown")
    if code == exitcodes.RECYCLE_MEMORY:
        return Exit("memory", "worker above memory_limit, replaced after its job", False, False)
    if code == exitcodes.RECYCLE_MAX_JOBS:
        return Exit("max_jobs", "worker ran max_jobs jobs, replaced", False, False)
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

    def __init__(self, cap: float = 60.0):
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
