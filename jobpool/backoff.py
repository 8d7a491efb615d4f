"""Waiting times: the retry schedule of jobs, and reconnect backoff."""

from __future__ import annotations

import random as _random
from collections.abc import Callable

from jobpool import defaults


def retry_wait(
    retry_delay: float,
    failed_attempt: int,
    *,
    jitter: bool = True,
    cap: float = defaults.RETRY_BACKOFF_MAX,
    random: Callable[[], float] = _random.random,
) -> float:
    """Seconds before attempt n+1 after attempt n failed.

    The schedule is ``d = retry_delay * 2**(n-1)``, capped at `cap`. Without `jitter` that is
    the wait. With it ("equal jitter": half fixed, half random) the wait is drawn uniformly from
    ``[d/2, 3d/2]``, so `d` stays its centre while a burst of jobs that failed together does not
    retry in lockstep. A draw above `cap` is folded back below it (``2*cap - x``): every wait
    stays under the cap, and those at the cap are spread over ``[cap/2, cap]`` instead of all
    landing on it. `random` returns a float in [0, 1), as random.random does (tests pass their
    own).
    """
    centre = min(retry_delay * 2.0 ** max(failed_attempt - 1, 0), cap)
    if not jitter:
        return centre
    wait = centre / 2 + random() * centre
    return 2 * cap - wait if wait > cap else wait


class Backoff:
    """Exponential backoff with full jitter, for reconnects and crash loops.

    Jitter keeps a fleet of workers from reconnecting in lockstep after a Redis restart.
    """

    def __init__(self, first: float = 0.1, cap: float = 5.0, rng: _random.Random | None = None):
        self.first, self.cap = first, cap
        self.failures = 0
        self._rng = rng or _random.Random()

    def next(self) -> float:
        """The next wait; each call doubles the ceiling up to `cap`."""
        ceiling = min(self.cap, self.first * 2.0**self.failures)
        self.failures += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
