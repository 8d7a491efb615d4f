"""Waiting times: the retry schedule of jobs, and reconnect backoff."""

from __future__ import annotations

import random


def retry_wait(retry_delay: float, failed_attempt: int) -> float:
    """Seconds before attempt n+1 after attempt n failed: ``retry_delay * 2**(n-1)``."""
    return retry_delay * 2.0 ** max(failed_attempt - 1, 0)


class Backoff:
    """Exponential backoff with full jitter, for reconnects and crash loops.

    Jitter keeps a fleet of workers from reconnecting in lockstep after a Redis restart.
    """

    def __init__(self, first: float = 0.1, cap: float = 5.0, rng: random.Random | None = None):
        self.first, self.cap = first, cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The next wait; each call doubles the ceiling up to `cap`."""
        ceiling = min(self.cap, self.first * 2.0**self.failures)
        self.failures += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
