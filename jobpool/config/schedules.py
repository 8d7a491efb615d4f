"""The `[schedules.NAME]` tables of a config, read into Schedule values (schedules/model.py).

Every problem is one message naming the table and the key, collected with the rest of the file's
problems. Whether `job` names a registered job, and whether `args` fit it, can only be known once
the job modules are imported: `jobpool check`, `jobpool start` and SIGHUP check that
(schedules/resolve.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from jobpool.config.reader import Reader, key_path
from jobpool.config.schema import Convert, describe, duration
from jobpool.names import check_queue_name
from jobpool.schedules import model
from jobpool.schedules.model import Schedule

SCHEDULE_FIELDS: dict[str, Convert] = {
    "cron": model.cron,
    "every": duration(at_least=1.0),
    "timezone": model.zone_name,
    "job": model.job_name,
    "args": model.args,
    "queue": check_queue_name,
    "catch_up": model.catch_up,
    "grace": duration(at_least=1.0),
}


def build_schedules(reader: Reader, raw: Any) -> Mapping[str, Schedule]:
    """[schedules.NAME] tables: `job` and exactly one of `cron` and `every` are required."""
    if not isinstance(raw, Mapping):
        reader.error("schedules", f"must be a table of schedule tables, got {describe(raw)}")
        return MappingProxyType({})
    schedules: dict[str, Schedule] = {}
    for name, table in raw.items():
        path = key_path("schedules", name)
        before = len(reader.problems)
        try:
            model.check_name(name)
        except ValueError as exc:
            reader.error(path, str(exc))
        values = reader.table(table, path, SCHEDULE_FIELDS)
        if isinstance(table, Mapping):
            _check_required(reader, path, table)
        if len(reader.problems) == before:
            schedules[name] = Schedule(name=name, **values)
    return MappingProxyType(schedules)


def _check_required(reader: Reader, path: str, table: Mapping[str, Any]) -> None:
    if "job" not in table:
        reader.error(path, "needs 'job': the registered name of a Job class or @job function")
    if ("cron" in table) == ("every" in table):
        reader.error(
            path,
            "needs exactly one of 'cron' (e.g. '0 3 * * *') and 'every' (e.g. '30s')",
        )
    if "every" in table and "timezone" in table:
        reader.error(
            key_path(path, "timezone"),
            "applies to 'cron' only: 'every' counts from the unix epoch",
        )
