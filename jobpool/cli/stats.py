"""The commands about what Redis holds: `stats` (every queue at a glance), `status` (one job)
and `cancel` (one job)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from jobpool import display, exitcodes
from jobpool.cli.common import (
    CommandError,
    config_of,
    queue_argument,
    queue_of_id,
    redis_driver,
)

STATS_COLUMNS = (
    ("workers", "workers"),
    ("ready", "ready"),
    ("delayed", "delayed"),
    ("in_flight", "in flight"),
    ("failed", "failed"),
    ("done_last_minute", "done/min"),
    ("failed_last_minute", "failed/min"),
    ("oldest_waiting_age", "oldest waiting"),
)
JOB_STATES = ("ready", "delayed", "in_flight", "failed")


def cmd_stats(args: argparse.Namespace) -> int:
    """Each queue's figures: the configured queues, and any other that holds jobs in Redis,
    marked unserved when no worker takes its jobs."""
    from jobpool.unserved import served_queues

    cfg = config_of(args)
    qm, driver = redis_driver(cfg, "stats")
    served = served_queues(cfg)
    queues = [queue_argument(q) for q in args.queues] or served + [
        q for q in driver.stored_queues() if q not in served
    ]
    stats = {}
    for queue in queues:
        numbers = driver.stats(queue)
        numbers["unserved"] = queue not in served and not numbers["workers"]
        if queue in served or args.queues or any(numbers[s] for s in JOB_STATES):
            stats[queue] = numbers  # a found queue can hold nothing but a wake token
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return exitcodes.OK
    rows = [["queue", *(title for _, title in STATS_COLUMNS), ""]]
    for queue, numbers in stats.items():
        cells = [_cell(numbers[key]) for key, _ in STATS_COLUMNS]
        rows.append([queue, *cells, "unserved" if numbers["unserved"] else ""])
    print("\n".join(display.table(rows, right=range(1, len(STATS_COLUMNS) + 1))))
    return exitcodes.OK


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}s"
    return str(value)


def cmd_status(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    qm, driver = redis_driver(cfg, "status")
    record = qm.get_job_status(args.job_id)
    if record is None:
        raise CommandError(f"no job {args.job_id!r} (unknown, or its record expired)")
    if not args.pretty:
        print(json.dumps(record, indent=2, sort_keys=True))
        return exitcodes.OK
    [body] = driver.payloads(record.get("queue") or queue_of_id(args.job_id), [args.job_id])
    print(display.pretty_record(record, body))
    return exitcodes.OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel one job: exit 0 when it is cancelled or asked to stop, 1 when there is no such
    job or it has finished."""
    from jobpool.drivers.base import Cancel

    cfg = config_of(args)
    qm, driver = redis_driver(cfg, "cancel")
    queue_of_id(args.job_id)  # a malformed id is an unknown job, not a traceback
    done = driver.cancel(args.job_id)
    if done is Cancel.NOTHING:
        record = qm.get_job_status(args.job_id)
        if record is None:
            raise CommandError(f"no job {args.job_id!r} (unknown, or its record expired)")
        raise CommandError(f"job {args.job_id!r} is {record['status']}: nothing to cancel")
    if done is Cancel.CANCELLED:
        print(f"job {args.job_id} cancelled: it will not run")
    else:
        print(
            f"job {args.job_id} is running: asked to stop (under `jobpool start` its worker is "
            "killed within a few seconds and the job recorded cancelled; a standalone "
            "`jobpool worker` lets it finish)"
        )
    return exitcodes.OK
