"""`jobpool schedules`: each schedule of the config with its next run, computed here, and its
last run as Redis recorded it (the tick and the job it pushed), so without importing job code."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from jobpool import display, exitcodes
from jobpool.cli.common import config_of, redis_driver
from jobpool.schedules.ticks import next_tick

if TYPE_CHECKING:
    from jobpool.config import Config
    from jobpool.drivers.redis import RedisDriver

COLUMNS = ("schedule", "when", "job", "queue", "next run", "last run", "last job")


def cmd_schedules(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    qm, driver = redis_driver(cfg, "schedules")
    rows = schedule_rows(cfg, driver, time.time())
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    elif not rows:
        print(f"{cfg.source}: no [schedules]")
    else:
        print("\n".join(display.table([list(COLUMNS), *map(_cells, rows)])))
    return exitcodes.OK


def schedule_rows(cfg: Config, driver: RedisDriver, now: float) -> list[dict[str, Any]]:
    """One dict per schedule: name, when, job, queue, next_run, and from Redis last_tick,
    last_job, last_job_status, claimed and outcome (None before its first run)."""
    rows = []
    for name, schedule in cfg.schedules.items():
        queue, state = _state(driver, name, schedule.queue)
        job_id = (state or {}).get("run_job")
        record = driver.status(job_id) if job_id else None
        rows.append(
            {
                "name": name,
                "when": schedule.describe(),
                "job": schedule.job,
                "queue": queue,
                "next_run": next_tick(schedule, now),
                "last_run": (state or {}).get("run_tick"),
                "last_job": job_id,
                "last_job_status": record["status"] if record else None,
                "claimed": (state or {}).get("claimed"),
                "outcome": (state or {}).get("outcome"),
            }
        )
    return rows


def _state(
    driver: RedisDriver, name: str, queue: str | None
) -> tuple[str | None, dict[str, Any] | None]:
    """The schedule's state in its queue's slot: the configured queue's, else (the job's own
    queue, which only the job modules know) the one found in Redis that claimed last."""
    queues = [queue] if queue else driver.schedule_queues(name)
    found: list[tuple[str | None, dict[str, Any] | None]] = []
    for q in queues:
        state = driver.schedule_state(q, name)
        if state:
            found.append((q, state))
    return max(found or [(queue, None)], key=lambda item: (item[1] or {}).get("claimed", 0))


def last_run_cells(row: dict[str, Any]) -> list[str]:
    """The last run's tick (local time) and the job it pushed, with that job's status."""
    if not row["last_run"]:
        return ["never", "-"]
    status = row["last_job_status"] or "record expired"
    return [display.local_time(row["last_run"]), f"{row['last_job']} ({status})"]


def _cells(row: dict[str, Any]) -> list[str]:
    return [
        row["name"],
        row["when"],
        row["job"],
        row["queue"] or "(the job's own)",
        display.local_time(row["next_run"]),
        *last_run_cells(row),
    ]
