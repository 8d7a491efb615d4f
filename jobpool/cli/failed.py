"""`jobpool failed list|retry|delete`: failed jobs, one or (with --all) every one of a queue."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from jobpool import display, exitcodes
from jobpool.config import Config

if TYPE_CHECKING:
    from jobpool.drivers.redis import RedisDriver
    from jobpool.manager import QueueManager
from jobpool.cli.common import (
    CommandError,
    config_of,
    log,
    queue_argument,
    queue_of_id,
    redis_driver,
)


def cmd_failed(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    _check_failed_usage(args)
    qm, driver = redis_driver(cfg, "failed")
    if args.job_id:
        return _failed_one(qm, args.action, args.job_id)
    queues = _failed_queues(cfg, driver, args.queue)
    if args.action == "list":
        return _list_failed(qm, driver, queues, args.limit)
    if args.action == "retry":
        print(f"{sum(_retry_all(qm, q) for q in queues)} job(s) queued again")
    else:
        ids = [r["id"] for q in queues for r in qm.failed_jobs(q, 0, 10**6)]
        print(f"{sum(_delete(qm, i) for i in ids)} job(s) deleted")
    return exitcodes.OK


def _check_failed_usage(args: argparse.Namespace) -> None:
    """Acting on every failed job of a queue takes --all, so that a forgotten job id does
    not retry or wipe a whole queue."""
    if args.action == "list":
        if args.job_id:
            raise CommandError("list takes no job id (narrow with -q QUEUE)", exitcodes.CONFIG)
        return
    if args.job_id and args.all:
        raise CommandError("pass a job id or --all, not both", exitcodes.CONFIG)
    if not args.job_id and not args.all:
        where = f"queue {args.queue}" if args.queue else "every queue the config serves"
        raise CommandError(
            f"pass a job id or --all (to {args.action} every failed job of {where})",
            exitcodes.CONFIG,
        )
    if args.job_id and args.queue and queue_of_id(args.job_id) != args.queue:
        raise CommandError(f"job {args.job_id!r} is not in queue {args.queue!r}", exitcodes.CONFIG)


def _failed_queues(cfg: Config, driver: RedisDriver, queue: str | None) -> list[str]:
    """-q QUEUE, or every queue the config serves. A queue that is neither configured nor
    holds anything in Redis is a typo: say so rather than find nothing in it."""
    from jobpool.unserved import served_queues

    served = served_queues(cfg)
    if queue is None:
        return served
    queue_argument(queue)
    counts = driver.counts(queue)
    if queue not in (*served, cfg.default_queue) and not any(counts.values()):
        raise CommandError(
            f"unknown queue {queue!r}: {cfg.source} does not serve it and Redis holds no job "
            f"of it (served: {', '.join(served)})"
        )
    return [queue]


def _failed_one(qm: QueueManager, action: str, job_id: str) -> int:
    """Retry or delete one job, which must be a failed one: `failed delete` must not drop a
    job that is waiting to run."""
    queue_of_id(job_id)  # a malformed id is an unknown job, not a traceback
    record = qm.get_job_status(job_id)
    if record is None or record.get("status") != "failed":
        state = "unknown, or its record expired" if record is None else f"it is {record['status']}"
        raise CommandError(f"no failed job {job_id!r} ({state})")
    if action == "retry":
        if not qm.retry_failed(job_id):
            raise CommandError(f"job {job_id!r} cannot be retried (its body is gone)")
        print("1 job(s) queued again")
    else:
        print(f"{_delete(qm, job_id)} job(s) deleted")
    return exitcodes.OK


def _retry_all(qm: QueueManager, queue: str) -> int:
    """Every failed job of the queue queued again. The driver moves a batch per call; stop
    at the count there was, or jobs that fail again at once would keep this going."""
    total, failed = 0, qm.counts(queue)["failed"]
    while total < failed and (moved := qm.retry_all_failed(queue)):
        total += moved
    return total


def _delete(qm: QueueManager, job_id: str) -> int:
    try:
        return int(qm.delete(job_id))
    except ValueError as exc:  # it is being run again (its failed() hook, say)
        log.warning("%s", exc)
        return 0


def _list_failed(qm: QueueManager, driver: RedisDriver, queues: list[str], limit: int) -> int:
    rows = []
    for queue in queues:
        records = qm.failed_jobs(queue, 0, limit)
        bodies = driver.payloads(queue, [r["id"] for r in records])
        rows += [_failed_row(r, b) for r, b in zip(records, bodies, strict=True)]
    if not rows:
        print(f"no failed jobs in {', '.join(queues)}")
        return exitcodes.OK
    header = ["id", "job", "failed at", "attempts", "arguments", "error"]
    print("\n".join(display.table([header, *rows])))
    return exitcodes.OK


def _failed_row(record: dict[str, Any], body: bytes | None) -> list[str]:
    return [
        record["id"],
        str(record.get("job", "?")),
        display.local_time(record.get("finished_at")),
        f"{record.get('attempts', '?')}/{record.get('max_tries', '?')}",
        display.arguments(body, display.ARGUMENTS_WIDTH),
        display.first_line(record.get("error")),
    ]
