"""The commands about what Redis holds: `stats` (every queue at a glance), `status` (one job)
and `cancel` (one job)."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from jobpool import display, exitcodes
from jobpool.cli.common import (
    CommandError,
    config_of,
    queue_argument,
    queue_of_id,
    redis_driver,
)
from jobpool.supervisor.registry import list_hosts

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

if TYPE_CHECKING:
    from jobpool.config import Config
    from jobpool.drivers.redis import RedisDriver


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
    limits = {}  # each served queue's rate_limit and max_running, decided at its claims
    for group in cfg.queues.values():
        limits.update({q: lim for q, lim in cfg.served_limits(group).items() if lim})
    stats = {}
    for queue in queues:
        numbers = driver.stats(queue)
        limit = limits.get(queue)
        numbers["limits"] = {
            "rate_limit": str(limit.rate) if limit and limit.rate else None,
            "max_running": limit.max_running if limit else None,
        }
        numbers["unserved"] = queue not in served and not numbers["workers"]
        numbers["paused"] = driver.is_paused(queue)
        numbers["batches"] = driver.running_batches(queue)
        if queue in served or args.queues or any(numbers[s] for s in JOB_STATES):
            stats[queue] = numbers  # a found queue can hold nothing but a wake token
    hosts = list_hosts(driver)  # every `jobpool start` that beats (supervisor/registry.py)
    if args.json:
        # "~hosts" (no queue can be named so), unless the command names its queues.
        shown = stats if args.queues else {**stats, HOSTS_KEY: hosts}
        print(json.dumps(shown, indent=2, sort_keys=True))
        return exitcodes.OK
    rows = [["queue", *(title for _, title in STATS_COLUMNS), ""]]
    for queue, numbers in stats.items():
        cells = [_cell(numbers[key]) for key, _ in STATS_COLUMNS]
        notes = [word for word in ("paused", "unserved") if numbers[word]]
        if numbers["limits"]["rate_limit"]:
            notes.append(f"rate_limit {numbers['limits']['rate_limit']}")
        if numbers["limits"]["max_running"]:
            notes.append(f"max_running {numbers['limits']['max_running']}")
        rows.append([queue, *cells, ", ".join(notes)])
    print("\n".join(display.table(rows, right=range(1, len(STATS_COLUMNS) + 1))))
    batches = [b for numbers in stats.values() for b in numbers["batches"]]
    if batches:
        print()
        print("\n".join(_batch_lines(batches)))
    if cfg.schedules and not args.queues:
        print()
        print("\n".join(_schedule_lines(cfg, driver)))
    if hosts and not args.queues:
        print()
        print("\n".join(_host_lines(hosts)))
    return exitcodes.OK


HOSTS_KEY = "~hosts"


def _host_lines(hosts: list[dict[str, Any]]) -> list[str]:
    """The masters of the host registry, each with a line per worker."""
    lines = ["hosts"]
    now = time.time()
    for host in hosts:
        up = f"{max(now - float(host.get('started_at', now)), 0.0):.0f}s"
        lines.append(
            f"  {host.get('host')} pid {host.get('pid')}: {host.get('worker_count', 0)} workers"
            f" on {', '.join(host.get('queues', []))}; {host.get('state', '?')}, up {up}, "
            f"beat {host.get('age', 0):.0f}s ago, jobpool {host.get('version', '?')}, "
            f"config {host.get('config', '?')}"
        )
        rows = [["    worker", "pid", "state", "job"]]
        for w in host.get("workers", []):
            job = w.get("job")
            shown = ", ".join(job) if isinstance(job, list) else (job or "")
            rows.append([f"    {w.get('slot')}", str(w.get("pid")), str(w.get("state")), shown])
        if len(rows) > 1:
            lines += display.table(rows)
    return lines


def _batch_lines(batches: list[dict[str, Any]], most: int = 10) -> list[str]:
    """A line per running batch, oldest first (`jobpool status ID` tells more)."""
    rows = [["batch", "done", "failed", "progress"]]
    for b in batches[:most]:
        done = f"{b['completed'] + b['failed']}/{b['total']}"
        rows.append([b["id"], done, str(b["failed"]), f"{b['progress']:.0%}"])
    more = [f"... and {len(batches) - most} more running batches"] if len(batches) > most else []
    return display.table(rows, right=range(1, 4)) + more


def _schedule_lines(cfg: Config, driver: RedisDriver) -> list[str]:
    """A line per schedule: its next run, and its last (`jobpool schedules` tells more)."""
    from jobpool.cli.schedules import last_run_cells, schedule_rows

    rows = [["schedule", "next run", "last run", "last job"]]
    for row in schedule_rows(cfg, driver, time.time()):
        rows.append([row["name"], display.local_time(row["next_run"]), *last_run_cells(row)])
    return display.table(rows)


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
    if not args.pretty or "kind" in record:  # a chain or batch: its JSON says it all
        print(json.dumps(record, indent=2, sort_keys=True))
        return exitcodes.OK
    [body] = driver.payloads(record.get("queue") or queue_of_id(args.job_id), [args.job_id])
    print(display.pretty_record(record, body))
    return exitcodes.OK


def _cancel_flow(driver: RedisDriver, flow_id: str, flow: dict[str, Any]) -> int:
    """`jobpool cancel` given a chain's id: what is left of it (workflows/chains.py)."""
    from jobpool.workflows import chains

    try:
        chains.not_a_batch(flow_id, flow, "cancel")
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not chains.cancel_chain(driver, flow):
        raise CommandError(f"chain {flow_id!r} is {flow['status']}: nothing to cancel")
    print(f"chain {flow_id} cancelled: its waiting steps will not run, a running one stops")
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
        if record.get("kind") in ("chain", "batch"):
            return _cancel_flow(driver, args.job_id, record)
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
