"""What one `[schedules.NAME]` table says, validated: when it ticks (a cron expression in a time
zone, or a fixed interval), which job it pushes with which arguments, to which queue, and what
happens to ticks missed while no master ran.

The converters here raise ValueError worded for the person editing the file; the config reader
(config/schedules.py) adds the file and the key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobpool import defaults
from jobpool.job import unencodable

CATCH_UP = ("last", "none")
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A schedule's name becomes part of a Redis key, as a queue name does: the same characters.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = (
    "schedule names must be 1 to 64 characters: letters, digits, '_', '.' or '-', starting with "
    "a letter or digit (they become part of Redis keys)"
)
CRON_FORMS = (
    "five fields 'minute hour day-of-month month day-of-week' (e.g. '0 3 * * *'), six with "
    "seconds first ('*/10 * * * * *'), or one of " + ", ".join(MACROS)
)
Args = list[Any] | dict[str, Any] | None
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)  # any time: a cron is checked from it


@dataclass(frozen=True)
class Schedule:
    """One schedule. Exactly one of `cron` (as expanded: macros replaced) and `every` (seconds)
    is set. `args`: positional (a list) or keyword (a dict) arguments, or None for none. A tick
    first claimed more than `grace` seconds after its time was missed (no master ran then)."""

    name: str
    job: str
    cron: str | None = None
    every: float | None = None
    timezone: str = defaults.SCHEDULE_TIMEZONE
    args: Args = None
    queue: str | None = None
    catch_up: str = defaults.SCHEDULE_CATCH_UP
    grace: float = defaults.SCHEDULE_GRACE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        """When it ticks, for listings: "cron '0 3 * * *' Europe/Berlin", "every 5s"."""
        if self.cron is not None:
            return f"cron '{self.cron}' {self.timezone}"
        return f"every {self.every:g}s"

    def call(self) -> tuple[list[Any], dict[str, Any]]:
        """`args` as (positional, keyword)."""
        if isinstance(self.args, list):
            return list(self.args), {}
        return [], dict(self.args or {})


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"{NAME_RULE}; got {name!r}")
    return name


def cron(value: Any) -> str:
    """A cron expression as cronsim takes it (macros expanded); ValueError if it cannot tick."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a cron expression: {CRON_FORMS}; got {value!r}")
    text = " ".join(value.split())
    text = MACROS.get(text.lower(), text)
    if text.startswith("@"):
        raise ValueError(f"unknown cron macro {value!r}: use one of {', '.join(MACROS)}")
    if len(text.split()) not in (5, 6):
        raise ValueError(f"must be {CRON_FORMS}; got {value!r}")
    try:
        CronSim(text, _EPOCH)
    except (CronSimError, ValueError) as exc:
        raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
    return text


def zone_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be an IANA time zone name such as 'Europe/Berlin'; got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None
    return value


def job_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            "must be the registered name of a Job class or @job function, such as "
            f"'billing.jobs:NightlyReport'; got {value!r}"
        )
    return value


def args(value: Any) -> list[Any] | dict[str, Any]:
    """Positional (an array) or keyword (a table) arguments, every one a JSON value: TOML's
    dates and times are not, nor are inf and nan."""
    if not isinstance(value, (list, dict)):
        raise ValueError(
            "must be an array of positional arguments or a table of keyword arguments; "
            f"got {type(value).__name__}"
        )
    why = unencodable(value)
    if why is not None:
        raise ValueError(f"every argument must be a JSON value, but one {why}")
    return value


def catch_up(value: Any) -> str:
    if value not in CATCH_UP:
        raise ValueError(f"must be 'last' or 'none'; got {value!r}")
    return str(value)
