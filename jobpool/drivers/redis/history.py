"""What finished, when, and how long it ran: the history behind the dashboard's charts.

Per queue, in one hash per minute (kept 24 h) and one per hour (kept 7 days):

    PREFIX:{QUEUE}:history:m:MINUTE   MINUTE: unix time // 60
    PREFIX:{QUEUE}:history:h:HOUR     HOUR:   unix time // 3600

    o:OUTCOME          attempts that ended so (completed, retrying, failed, lost, cancelled)
    d:BUCKET           attempts whose run time fell in BUCKET (see bucket(): ~26% wide)
    s                  their run time in all, in microseconds
    o:OUTCOME:CLASS    d:BUCKET:CLASS    s:CLASS     the same for one job class

The masters write it (`HistoryRecorder`, fed with what their workers report when a job ends),
adding up a tick's jobs and sending them in one pipeline at most every FLUSH_EVERY seconds:
not the Lua scripts, which run for every job and stay as short as they are. Several masters add
to the same hashes (HINCRBY), and run-time percentiles are read from the summed histograms, so
any number of hosts add up. Jobs run by a standalone `jobpool worker` are not in it (no master
hears of them); the stats hash's 10-second counters (`jobpool stats`) count them.

Minutes and hours come from the writing master's clock (NTP keeps hosts within a second).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.drivers.redis.keys import QueueKeys

log = logging.getLogger("jobpool.history")

MINUTE, HOUR = 60, 3600
KEEP = {"m": 24 * 3600 + 2 * MINUTE, "h": 7 * 24 * 3600 + 2 * HOUR}  # seconds each hash lives
SPAN = {"m": MINUTE, "h": HOUR}
FLUSH_EVERY = 0.5  # seconds: the longest a finished job waits to reach the history
FINEST = 1e-4  # seconds: the upper bound of bucket 0
STEPS_PER_DECADE = 10  # buckets per factor of 10 in run time
LAST_BUCKET = 90  # up to 1e-4 * 10**9 s: ~3 years; longer runs count here
REDIS_ERRORS = (redis.RedisError, *CONNECTION_ERRORS)


def bucket(seconds: float) -> int:
    """The histogram bucket of a run time: bucket b holds (upper(b-1), upper(b)]."""
    if seconds <= FINEST:
        return 0
    b = math.ceil(STEPS_PER_DECADE * math.log10(seconds / FINEST) - 1e-9)
    return min(max(b, 0), LAST_BUCKET)


def upper(b: int) -> float:
    """The longest run time bucket `b` holds, in seconds."""
    return float(FINEST * 10.0 ** (b / STEPS_PER_DECADE))


def percentile(histogram: dict[int, int], q: float) -> float | None:
    """The run time below which a share `q` (0..1) of the runs fell, interpolated inside its
    bucket on a log scale (so within the bucket's ~26% width); None without runs."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank, seen = q * total, 0
    for b in sorted(histogram):
        n = histogram[b]
        if n > 0 and seen + n >= rank:
            low = upper(b - 1) if b > 0 else FINEST / 10
            share = (rank - seen) / n
            return float(low * (upper(b) / low) ** share)
        seen += n
    return upper(max(histogram))


@dataclass
class Tally:
    """Finished attempts of one period (or several added up): counts by outcome, run times."""

    outcomes: dict[str, int] = field(default_factory=dict)
    histogram: dict[int, int] = field(default_factory=dict)
    micros: int = 0

    @property
    def count(self) -> int:
        return sum(self.outcomes.values())

    def add(self, other: Tally) -> None:
        for name, n in other.outcomes.items():
            self.outcomes[name] = self.outcomes.get(name, 0) + n
        for b, n in other.histogram.items():
            self.histogram[b] = self.histogram.get(b, 0) + n
        self.micros += other.micros

    def runtime(self, q: float) -> float | None:
        return percentile(self.histogram, q)


@dataclass
class Period:
    """One minute or hour of a queue: its start (unix seconds), in total and by job class."""

    start: int
    total: Tally = field(default_factory=Tally)
    classes: dict[str, Tally] = field(default_factory=dict)


def history_key(keys: QueueKeys, resolution: str, index: int) -> str:
    """The hash of minute (resolution "m") or hour ("h") number `index` of a queue."""
    return keys.history(resolution, index)


def parse(start: int, raw: dict[bytes, bytes]) -> Period:
    """A period from its hash (see the module's docstring); unknown fields are skipped."""
    period = Period(start)
    for name, value in raw.items():
        kind, _, rest = name.decode(errors="replace").partition(":")
        try:
            n = int(value)
        except ValueError:
            continue
        if kind == "s":
            tally = period.classes.setdefault(rest, Tally()) if rest else period.total
            tally.micros += n
            continue
        what, _, job_class = rest.partition(":")
        tally = period.classes.setdefault(job_class, Tally()) if job_class else period.total
        if kind == "o" and what:
            tally.outcomes[what] = tally.outcomes.get(what, 0) + n
        elif kind == "d" and what.isdigit():
            tally.histogram[int(what)] = tally.histogram.get(int(what), 0) + n
    return period


def read(
    client: redis.Redis, keys: QueueKeys, resolution: str, first: int, last: int
) -> list[Period]:
    """Periods `first` to `last` (minute or hour numbers) of a queue, oldest first, in one
    pipeline; a period nothing finished in is empty."""
    span = SPAN[resolution]
    pipe = client.pipeline(transaction=False)
    for index in range(first, last + 1):
        pipe.hgetall(history_key(keys, resolution, index))
    raws = pipe.execute()
    return [
        parse(index * span, raw) for index, raw in zip(range(first, last + 1), raws, strict=True)
    ]


class HistoryRecorder:
    """The master's side: `add()` each finished attempt, `flush()` once per loop turn; the
    pipeline goes out at most every FLUSH_EVERY seconds. `add()` only counts into a dict (it
    runs once per job in the master: about a microsecond); `flush()` turns the counts into hash
    fields of the current minute and hour. A Redis that fails keeps the counts for the next try
    (a few entries per queue, class and run-time bucket: it stays small), and is logged once
    until a write succeeds again; nothing here ever raises into the loop."""

    def __init__(self, client: Any, prefix: str, clock: Any = time.time) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock
        self.pending: dict[tuple[str, str, str, int], int] = {}  # (queue, class, outcome, b)
        self.seconds: dict[tuple[str, str], float] = {}  # (queue, class) -> run time
        self._keys: dict[str, QueueKeys] = {}
        self._last_flush = 0.0
        self._failing = False

    def add(self, queue: str, job_class: str, outcome: str, seconds: float) -> None:
        counted = (queue, job_class, outcome, bucket(seconds))
        self.pending[counted] = self.pending.get(counted, 0) + 1
        timed = (queue, job_class)
        self.seconds[timed] = self.seconds.get(timed, 0.0) + seconds

    def next_flush(self) -> float | None:
        """When (time.monotonic()) the next flush is due, or None with nothing to write."""
        return self._last_flush + FLUSH_EVERY if self.pending else None

    def flush(self, now: float, force: bool = False) -> None:
        """Send what was added, if FLUSH_EVERY passed since the last flush (or `force`)."""
        if not self.pending or (not force and now < self._last_flush + FLUSH_EVERY):
            return
        self._last_flush = now
        try:
            self._write(self.fields())
        except REDIS_ERRORS as exc:
            if not self._failing:
                self._failing = True
                name = type(exc).__name__
                log.warning("cannot write the job history to Redis (%s: %s)", name, exc)
            return
        self._failing = False
        self.pending, self.seconds = {}, {}

    def fields(self) -> dict[str, dict[str, int]]:
        """The increments of what was added, by hash (this minute's and hour's of each queue)."""
        at = self.clock()
        out: dict[str, dict[str, int]] = {}

        def bump(queue: str, names: tuple[str, ...], n: int) -> None:
            keys = self._keys.get(queue)
            if keys is None:
                keys = self._keys[queue] = QueueKeys(self.prefix, queue)
            for resolution, span in SPAN.items():
                fields = out.setdefault(history_key(keys, resolution, int(at // span)), {})
                for name in names:
                    fields[name] = fields.get(name, 0) + n

        for (queue, job_class, outcome, b), n in self.pending.items():
            job_class = job_class.replace("\n", " ")
            names = (f"o:{outcome}", f"d:{b}", f"o:{outcome}:{job_class}", f"d:{b}:{job_class}")
            bump(queue, names, n)
        for (queue, job_class), seconds in self.seconds.items():
            bump(queue, ("s", f"s:{job_class.replace(chr(10), ' ')}"), round(seconds * 1e6))
        return out

    def _write(self, increments: dict[str, dict[str, int]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, fields in increments.items():
            for name, n in fields.items():
                pipe.hincrby(key, name, n)
            pipe.expire(key, KEEP[key.rsplit(":", 2)[-2]])
        pipe.execute()


def recent_minutes(now: float, count: int) -> tuple[int, int]:
    """The numbers of the last `count` minutes, the current one included."""
    last = int(now // MINUTE)
    return last - count + 1, last


def add_up(periods: Sequence[Period]) -> tuple[Tally, dict[str, Tally]]:
    """The periods' tallies added up, in total and by job class."""
    total, classes = Tally(), dict[str, Tally]()
    for period in periods:
        total.add(period.total)
        for name, tally in period.classes.items():
            classes.setdefault(name, Tally()).add(tally)
    return total, classes


def recorder_for(driver: Any) -> HistoryRecorder:
    """The recorder of the master's driver (a RedisDriver: `jobpool start` needs Redis)."""
    return HistoryRecorder(driver.client, driver.prefix)
