"""Rate and concurrency limits of a queue, decided in Redis at each claim (lua/fetch.lua), so
that they hold across every worker on every host.

`rate_limit = "100/s"`: at most 100 jobs start in any window of one second (a sliding window of
start times: a burst of 100 may start at once, then no more until the oldest start is a second
old). `max_running = 4`: at most 4 of the queue's jobs are held by workers at once. A claim over
a limit takes nothing; the worker waits until the limit allows (it is told when) without
holding a job, so nothing counts an attempt.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

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


def class_limit(job_cls: type[Any]) -> list[Any] | None:
    """A job class's own limits as its jobs' records carry them for fetch.lua: [class name,
    starts per window (0: none), window in ms, max running (0: none)], or None without any.
    ValueError naming the class for a wrong setting."""
    rate_text, most = getattr(job_cls, "rate_limit", None), getattr(job_cls, "max_running", None)
    if rate_text is None and most is None:
        return None
    name = job_cls.__name__
    try:
        rate = parse_rate(rate_text) if rate_text is not None else None
    except ValueError as exc:
        raise ValueError(f"{name}.rate_limit {exc}") from None
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
        raise ValueError(f"{name}.max_running must be an int >= 1 or None, got {most!r}")
    window = math.ceil(rate.seconds * 1000) if rate else 0
    return [getattr(job_cls, "job_name", name), rate.count if rate else 0, window, most or 0]
