"""Schedules without Redis: the [schedules] tables and their errors, tick computation across
daylight saving changes, and the runner of two masters on one in-memory driver with a moved
clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from jobpool.config import ConfigError, config_from_dict
from jobpool.drivers.memory import MemoryDriver
from jobpool.schedules.model import Schedule
from jobpool.schedules.resolve import Template
from jobpool.schedules.runner import ScheduleRunner
from jobpool.schedules.ticks import last_tick, next_tick

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc


def at(*args: int, tz: dt.tzinfo = BERLIN) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, UTC)


def cron(expr: str, timezone: str = "Europe/Berlin") -> Schedule:
    cfg = config_from_dict({"schedules": {"s": {"cron": expr, "timezone": timezone, "job": "j"}}})
    return cfg.schedules["s"]


# -- ticks -------------------------------------------------------------------------------------


def test_a_time_skipped_in_spring_runs_when_the_clocks_have_jumped():
    daily = cron("30 2 * * *")  # 2025-03-30 02:00 CET -> 03:00 CEST: 02:30 never happens
    first = next_tick(daily, at(2025, 3, 29, 12, 0))
    assert utc(first) == dt.datetime(2025, 3, 30, 1, 0, tzinfo=UTC)  # 03:00 CEST
    second = next_tick(daily, first)
    assert dt.datetime.fromtimestamp(second, BERLIN).replace(tzinfo=None) == dt.datetime(
        2025, 3, 31, 2, 30
    )


def test_a_time_repeated_in_autumn_runs_once():
    daily = cron("30 2 * * *")  # 2025-10-26 03:00 CEST -> 02:00 CET: 02:30 happens twice
    first = next_tick(daily, at(2025, 10, 25, 12, 0))
    assert utc(first) == dt.datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = next_tick(daily, first)
    assert utc(second) == dt.datetime(2025, 10, 27, 1, 30, tzinfo=UTC)  # 02:30 CET next day


def test_hourly_ticks_every_real_hour_across_both_changes():
    hourly = cron("@hourly")
    for start in (at(2025, 3, 29, 23, 30), at(2025, 10, 25, 23, 30)):
        ticks, t = [], start
        for _ in range(5):
            t = next_tick(hourly, t)
            ticks.append(t)
        assert [b - a for a, b in zip(ticks, ticks[1:], strict=False)] == [3600.0] * 4


def test_daily_at_midnight_in_a_zone_is_midnight_there():
    daily = cron("0 0 * * *", "America/New_York")
    tick = next_tick(daily, at(2025, 7, 1, 12, 0, tz=UTC))
    assert utc(tick) == dt.datetime(2025, 7, 2, 4, 0, tzinfo=UTC)  # EDT is UTC-4
    winter = next_tick(daily, at(2025, 12, 1, 12, 0, tz=UTC))
    assert utc(winter) == dt.datetime(2025, 12, 2, 5, 0, tzinfo=UTC)  # EST is UTC-5


def test_last_tick_is_at_or_before_and_next_tick_strictly_after():
    minute = cron("* * * * *", "UTC")
    t = at(2025, 1, 1, 3, 0, tz=UTC)
    assert last_tick(minute, t) == t and last_tick(minute, t + 59.9) == t
    assert last_tick(minute, t - 0.001) == t - 60
    assert next_tick(minute, t) == t + 60 and next_tick(minute, t - 0.5) == t
    daily = cron("0 3 * * *")
    assert last_tick(daily, at(2025, 1, 2, 2, 59)) == at(2025, 1, 1, 3, 0)


def test_seconds_and_intervals():
    every_ten = cron("*/10 * * * * *", "UTC")  # six fields: seconds first
    t = at(2025, 1, 1, 3, 0, 5, tz=UTC)
    assert next_tick(every_ten, t) == t + 5 and last_tick(every_ten, t) == t - 5
    cfg = config_from_dict({"schedules": {"s": {"every": "1s", "job": "j"}}})
    every = cfg.schedules["s"]
    assert next_tick(every, 100.2) == 101.0 and last_tick(every, 100.2) == 100.0
    assert next_tick(every, 101.0) == 102.0 and last_tick(every, 101.0) == 101.0


# -- the tables --------------------------------------------------------------------------------


def test_a_schedule_table_and_its_defaults():
    cfg = config_from_dict(
        {
            "schedules": {
                "nightly_report": {
                    "cron": "@daily",
                    "job": "billing.jobs:NightlyReport",
                    "args": {"day": "yesterday"},
                    "queue": "reports",
                },
                "pulse": {"every": "30s", "job": "app:ping", "args": [1, 2], "catch_up": "none"},
            }
        }
    )
    nightly, pulse = cfg.schedules["nightly_report"], cfg.schedules["pulse"]
    assert (nightly.cron, nightly.timezone, nightly.catch_up) == ("0 0 * * *", "UTC", "last")
    assert nightly.call() == ([], {"day": "yesterday"}) and nightly.queue == "reports"
    assert (pulse.every, pulse.call(), pulse.catch_up) == (30.0, ([1, 2], {}), "none")


def test_every_problem_names_the_table_and_the_key():
    with pytest.raises(ConfigError) as caught:
        config_from_dict(
            {
                "schedules": {
                    "bad": {
                        "cron": "61 * * * *",
                        "timezone": "Mars/Olympus",
                        "args": {"when": dt.date(2025, 1, 1)},
                        "queue": "a:b",
                        "catch_up": "all",
                        "jobb": "x",
                    },
                    "both": {"cron": "@hourly", "every": "1m", "job": "j"},
                    "fast": {"every": "100ms", "job": "j"},
                    "macro": {"cron": "@fortnightly", "job": "j"},
                }
            },
            source="jobpool.toml",
        )
    problems = caught.value.problems
    for expected in (
        "schedules.bad.cron: invalid cron expression '61 * * * *'",
        "schedules.bad.timezone: unknown time zone 'Mars/Olympus'",
        "schedules.bad.args: every argument must be a JSON value, but one cannot be stored",
        "schedules.bad.queue: invalid queue name",
        "schedules.bad.catch_up: must be 'last' or 'none'",
        "unknown key 'schedules.bad.jobb' (did you mean 'job'?)",
        "schedules.bad: needs 'job'",
        "schedules.both: needs exactly one of 'cron'",
        "schedules.fast.every: must be at least 1 second",
        "schedules.macro.cron: unknown cron macro '@fortnightly'",
    ):
        assert any(expected in p for p in problems), (expected, problems)
    assert all(p.startswith("jobpool.toml: ") for p in problems)


# -- the runner --------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _runner(driver: MemoryDriver, schedule: Schedule) -> ScheduleRunner:
    template = Template(schedule.name, "default", '{"job":"j","attrs":{}}', {"job": "j"})
    runner = ScheduleRunner(driver)
    runner.replace({schedule.name: schedule}, {schedule.name: template})
    return runner


def _ticks(driver: MemoryDriver) -> list[float]:
    return sorted(r["tick_at"] / 1000 for r in driver._records.values())


def test_two_masters_push_each_tick_once_and_sleep_until_the_next():
    every = config_from_dict({"schedules": {"s": {"every": "5s", "job": "j"}}}).schedules["s"]
    clock = Clock(1_000_000.0)
    driver = MemoryDriver(clock=clock)
    masters = [_runner(driver, every), _runner(driver, every)]
    for _ in range(40):  # 20 s in half seconds, both masters each step
        for runner in masters:
            runner.run_due(clock.now)
            assert runner.next_due() is not None and runner.next_due() > clock.now
        clock.now += 0.5
    assert _ticks(driver) == [1_000_000.0 + 5 * i for i in range(4)]


def test_a_restart_after_missed_ticks_catches_up_the_last_one_once():
    every = config_from_dict({"schedules": {"s": {"every": "10s", "job": "j"}}}).schedules["s"]
    clock = Clock(2_000_000.0)
    driver = MemoryDriver(clock=clock)
    _runner(driver, every).run_due(clock.now)
    clock.now += 3600.5  # every master down for an hour
    again = [_runner(driver, every), _runner(driver, every)]
    for runner in again:
        runner.run_due(clock.now)
    assert _ticks(driver) == [2_000_000.0, 2_003_600.0]
