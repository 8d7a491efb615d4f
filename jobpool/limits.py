"""Rate and concurrency limits of a queue, decided in Redis at each claim (lua/fetch.lua), so
that they hold across every worker on every host.

`rate_limit = "100/s"`: at most 100 jobs start in any window of one second (a sliding window of
start times: a burst of 100 may start at once, then no more until the oldest start is a second
old). `max_running = 4`: at most 4 of the queue's jobs are held by workers at once. A claim over
a limit takes nothing; the worker waits until the limit allows (it is told when) without
holding a job, so nothing counts an attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*")


@dataclass(frozen=True)
class RateLimit:
    """`count` starts per `seconds`."""

    count: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}s"


@dataclass(frozen=True)
class Limits:
    """A queue's limits, as its workers pass them to each claim."""

    rate: RateLimit | None = None
    max_running: int | None = None

    def __bool__(self) -> bool:
        return self.rate is not None or self.max_running is not None


def parse_rate(text: str) -> RateLimit:
    """ "100/s", "5/m", "1000/h", or with a count of units: "30/10s"."""
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(
            f'must be a rate such as "100/s", "5/m", "1000/h" or "30/10s", got {text!r}'
        )
    count, units, unit = int(match[1]), int(match[2] or 1), match[3]
    if count < 1 or units < 1:
        raise ValueError(f"must allow at least 1 job per at least 1 {unit}, got {text!r}")
    return RateLimit(count, units * _UNITS[unit])
