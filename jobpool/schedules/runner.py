"""What each `jobpool start` master does with the schedules, once per turn of its loop.

Every master runs every schedule; Redis decides. At each tick each master sends the tick to
lua/schedule_tick.lua, which claims it and pushes its job in one step, so the first call pushes
and the others find it claimed: no leader, nothing to hand over when a master dies, and a master
killed at any moment has either pushed the tick's job or left the tick to the others.

A master that starts (or reloads) first sends the latest tick at or before now. On a schedule
that ran before, that tick was either claimed already (some master was up), or it was missed
while every master was down: `catch_up = "last"` pushes it now, once, and "none" skips it. A
new schedule claims it without pushing, unless it is within the schedule's `grace` (60 s) of its
time, and starts at its next tick.

The runner takes the time as an argument and says when it wants to run next, so the master
sleeps until then, and tests can move the clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from jobpool.drivers.base import Driver
from jobpool.ids import new_job_id
from jobpool.schedules.model import Schedule
from jobpool.schedules.resolve import Template
from jobpool.schedules.ticks import last_tick, next_tick

log = logging.getLogger("jobpool.schedules")
RETRY = 1.0  # seconds before a tick that Redis refused is tried again
WARN_EVERY = 60.0  # seconds between warnings about one schedule that Redis keeps refusing


@dataclass
class _Entry:
    schedule: Schedule
    template: Template
    due: float = -math.inf  # when to look again (unix seconds): at once when new
    claimed: float = -math.inf  # the latest tick known to be claimed, by anyone
    warned: float = -math.inf


class ScheduleRunner:
    def __init__(self, driver: Driver):
        self.driver = driver
        self._entries: dict[str, _Entry] = {}

    def replace(
        self, schedules: Mapping[str, Schedule], templates: Mapping[str, Template]
    ) -> list[str]:
        """Take a new set of schedules (start, SIGHUP); one that did not change keeps its
        place. Returns the names of the new or changed ones."""
        entries, changed = {}, []
        for name, schedule in schedules.items():
            old = self._entries.get(name)
            template = templates[name]
            if old is not None and old.schedule == schedule and old.template == template:
                entries[name] = old
            else:
                entries[name] = _Entry(schedule, template)
                changed.append(name)
        self._entries = entries
        return changed

    def __len__(self) -> int:
        return len(self._entries)

    def next_due(self) -> float | None:
        """When the runner wants to run next (unix seconds), None without schedules."""
        return min((e.due for e in self._entries.values()), default=None)

    def run_due(self, now: float) -> None:
        """Send every tick that is due at `now` (unix seconds) to Redis."""
        for entry in self._entries.values():
            if entry.due <= now:
                self._run(entry, now)

    def _run(self, entry: _Entry, now: float) -> None:
        schedule, template = entry.schedule, entry.template
        tick = last_tick(schedule, now)
        if tick <= entry.claimed:
            entry.due = next_tick(schedule, now)
            return
        job = (new_job_id(template.queue), template.body, template.record)
        try:
            claim = self.driver.schedule_tick(
                template.queue,
                schedule.name,
                tick,
                job,
                schedule.catch_up == "last",
                schedule.grace,
                template.unique,
            )
        except Exception as exc:  # noqa: BLE001 - Redis refused or is away: try again soon
            if now - entry.warned >= WARN_EVERY:
                entry.warned = now
                log.warning(
                    "schedule %s: could not claim its tick of %s (%s: %s); trying again",
                    schedule.name,
                    _iso(tick),
                    type(exc).__name__,
                    exc,
                )
            entry.due = now + RETRY
            return
        entry.claimed = max(claim.claimed, tick)
        entry.due = next_tick(schedule, now)
        if claim.outcome == "pushed":
            lateness = now - tick
            log.info(
                "schedule %s: tick %s pushed job %s to queue %s (%.3fs after the tick)",
                schedule.name,
                _iso(tick),
                claim.job_id,
                template.queue,
                lateness,
            )
        elif claim.outcome == "skipped":
            log.info(
                "schedule %s: tick %s skipped: no master ran at its time, and the schedule "
                "is new or has catch_up = 'none'; it runs from its next tick",
                schedule.name,
                _iso(tick),
            )
        elif claim.outcome == "held":
            log.info(
                "schedule %s: tick %s pushed nothing: job %s holds its unique key",
                schedule.name,
                _iso(tick),
                claim.job_id,
            )


def _iso(tick: float) -> str:
    return dt.datetime.fromtimestamp(tick, dt.timezone.utc).isoformat(timespec="milliseconds")
