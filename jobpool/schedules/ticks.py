"""When a schedule ticks: the next tick after a time, and the last one at or before it.

Times are unix seconds. A cron expression is read in the schedule's time zone by cronsim, which
follows Debian cron across daylight saving changes: a job at a fixed time that falls into the
hour skipped in spring runs when the clocks have jumped (02:30 -> 03:00), one at a fixed time of
the repeated autumn hour runs once (its first occurrence), and an hourly or every-minute
expression keeps ticking every real hour or minute. An interval (`every`) ticks at the
multiples of itself since the unix epoch, so that every master computes the same ticks.

Every tick is a whole millisecond (cron ticks are whole seconds), so the tick's time, as an
integer of milliseconds, names it in Redis.
"""

from __future__ import annotations

import datetime as dt
import math

from cronsim import CronSim

from jobpool.schedules.model import Schedule


def next_tick(schedule: Schedule, after: float) -> float:
    """The first tick strictly after `after`."""
    if schedule.every is not None:
        step = _step_ms(schedule)
        return (math.floor(after * 1000) // step + 1) * step / 1000
    assert schedule.cron is not None
    start = dt.datetime.fromtimestamp(math.floor(after), schedule.zone)
    return next(CronSim(schedule.cron, start)).timestamp()


def last_tick(schedule: Schedule, at: float) -> float:
    """The last tick at or before `at`."""
    if schedule.every is not None:
        step = _step_ms(schedule)
        return math.floor(at * 1000) // step * step / 1000
    assert schedule.cron is not None
    # cronsim goes strictly back from a whole second; ticks are whole seconds.
    start = dt.datetime.fromtimestamp(math.floor(at) + 1, schedule.zone)
    return next(CronSim(schedule.cron, start, reverse=True)).timestamp()


def tick_ms(tick: float) -> int:
    """A tick's name in Redis: its time in whole milliseconds."""
    return round(tick * 1000)


def _step_ms(schedule: Schedule) -> int:
    assert schedule.every is not None
    return max(round(schedule.every * 1000), 1)
