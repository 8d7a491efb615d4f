"""The `jobpool` command: check, worker, status, failed, embedded.

Exit codes are in jobpool.exitcodes: 2 for a bad config or usage, 3 when Redis cannot be
reached, 4 when a job module cannot be imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from jobpool import exitcodes
from jobpool.backoff import Backoff
from jobpool.config import Config, ConfigError, load_config
from jobpool.connection import CONNECTION_ERRORS
from jobpool.log import setup_logging

log = logging.getLogger("jobpool")
DEFAULT_CONFIG = os.environ.get("JOBPOOL_CONFIG", "jobpool.toml")


class CommandError(Exception):
    """A message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int = exitcodes.ERROR):
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobpool", description="Redis job queues and workers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func: Callable[[argparse.Namespace], int]):
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument(
            "-c",
            "--config",
            default=DEFAULT_CONFIG,
            help=f"config file (default: $JOBPOOL_CONFIG or {DEFAULT_CONFIG})",
        )
        p.set_defaults(func=func)
        return p

    command("check", "validate a config file; exit 2 listing every problem", cmd_check)
    p = command("start", "run the master and its worker pool in the foreground", cmd_start)
    _redis_wait_option(p)
    p = command(
        "worker",
        "run one worker in the foreground (SIGTERM/SIGINT: finish the job, exit)",
        cmd_worker,
    )
    p.add_argument("queue", nargs="?", help="queue to serve (default: the config's default_queue)")
    p.add_argument("--max-jobs", type=int, default=0, help="exit after this many jobs")
    p.add_argument("--burst", action="store_true", help="exit when no job is ready or delayed")
    _redis_wait_option(p)
    p = command("stats", "print each queue's counts, throughput and oldest waiting job", cmd_stats)
    p.add_argument("queues", nargs="*", metavar="QUEUE", help="queues (default: the config's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = command("status", "print a job's status record as JSON", cmd_status)
    p.add_argument("job_id")
    p = command("failed", "list, retry or delete failed jobs", cmd_failed)
    p.add_argument("action", choices=["list", "retry", "delete"])
    p.add_argument("job_id", nargs="?", help="one job (default: every failed job of the queue)")
    p.add_argument("-q", "--queue", help="queue (default: the config's default_queue)")
    p.add_argument("--limit", type=int, default=100, help="most jobs to list")
    p = command("embedded", "start, stop or inspect the embedded redis-server", cmd_embedded)
    p.add_argument("action", choices=["start", "stop", "status"])
    return parser


def _redis_wait_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to retry an unreachable Redis before exit 3 (default 30)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as exc:
        print(f"jobpool {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return exitcodes.CONFIG
    except KeyboardInterrupt:
        return 130


def _config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    setup_logging(cfg.log_level, cfg.log_format)
    return cfg


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    queues = ", ".join(f"{q.name} ({q.workers} workers)" for q in cfg.queues.values()) or "none"
    print(f"{args.config}: ok (driver {cfg.driver}, queues: {queues})")
    return exitcodes.OK


def import_job_modules(modules: Sequence[str]) -> None:
    from jobpool.job import import_job_modules as _import

    try:
        _import(modules)
    except ImportError as exc:
        raise CommandError(str(exc), exitcodes.IMPORT_FAILED) from exc


def _manager(cfg: Config, wait: float = 0.0):
    """A QueueManager on the configured server; with `wait`, keep trying to reach Redis that
    long (with backoff) before giving up with exit code 3."""
    from jobpool.manager import QueueManager

    deadline, backoff = time.monotonic() + wait, Backoff(first=0.2, cap=5.0)
    while True:
        try:
            qm = QueueManager.from_config(cfg)
            if cfg.driver == "redis":
                qm.driver.client.ping()
            return qm
        except redis.AuthenticationError as exc:  # retrying cannot fix credentials
            raise CommandError(
                f"Redis at {cfg.redis.safe_url()} refused the credentials: {exc}", exitcodes.CONFIG
            ) from None
        except CONNECTION_ERRORS as exc:
            if time.monotonic() >= deadline:
                raise CommandError(
                    f"cannot reach Redis at {cfg.redis.safe_url()}: {exc}",
                    exitcodes.REDIS_UNREACHABLE,
                ) from None
            pause = backoff.next()
            log.warning(
                "cannot reach Redis at %s (%s); retrying in %.1fs", cfg.redis.safe_url(), exc, pause
            )
            time.sleep(pause)


def cmd_worker(args: argparse.Namespace) -> int:
    from jobpool.events import TitleEvents
    from jobpool.worker import Worker

    cfg = _config(args)
    queue = args.queue or cfg.default_queue
    _check_listed(cfg, queue)
    qcfg = cfg.queue(queue)
    import_job_modules(cfg.imports)
    qm = _manager(cfg, wait=args.redis_wait)
    worker = Worker(qm, queue, lease=qcfg.lease, prefetch=qcfg.prefetch, events=TitleEvents(queue))
    log.info("worker %s serving queue %s on %s", worker.worker_id, queue, cfg.redis.safe_url())
    done = worker.run(max_jobs=args.max_jobs, burst=args.burst)
    log.info("worker %s stopped after %d job(s)", worker.worker_id, done)
    qm.close()
    return exitcodes.OK


def _check_listed(cfg: Config, queue: str) -> None:
    """A config that lists its queues names every queue a worker may serve, so a name outside
    the list is a typo, not a new queue. The default queue is always allowed: push() uses it."""
    if cfg.queues and queue not in cfg.queues and queue != cfg.default_queue:
        listed = ", ".join(sorted(cfg.queues))
        raise CommandError(
            f"unknown queue {queue!r}: {cfg.source} lists only {listed} under [queues] "
            f"(and the default queue {cfg.default_queue!r})",
            exitcodes.CONFIG,
        )


def cmd_start(args: argparse.Namespace) -> int:
    from jobpool.supervisor import Supervisor

    cfg = _config(args)
    if cfg.pool.preload:
        import_job_modules(cfg.imports)
    from jobpool.metrics import MetricsError

    qm = _manager(cfg, wait=args.redis_wait)
    try:
        return Supervisor(cfg, args.config, qm.driver, preloaded=cfg.pool.preload).run()
    except MetricsError as exc:
        raise CommandError(str(exc), exitcodes.CONFIG) from None


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


def cmd_stats(args: argparse.Namespace) -> int:
    cfg = _config(args)
    qm = _manager(cfg)
    queues = args.queues or list(cfg.queues) or [cfg.default_queue]
    stats = {queue: qm.driver.stats(qm._queue(None, queue)) for queue in queues}
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return exitcodes.OK
    rows = [["queue", *(title for _, title in STATS_COLUMNS)]]
    for queue, numbers in stats.items():
        rows.append([queue, *(_cell(numbers[key]) for key, _ in STATS_COLUMNS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return exitcodes.OK


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}s"
    return str(value)


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _config(args)
    record = _manager(cfg).get_job_status(args.job_id)
    if record is None:
        raise CommandError(f"no job {args.job_id!r} (unknown, or its record expired)")
    print(json.dumps(record, indent=2, sort_keys=True))
    return exitcodes.OK


def cmd_failed(args: argparse.Namespace) -> int:
    cfg = _config(args)
    qm = _manager(cfg)
    queue = args.queue or (args.job_id.rpartition(":")[0] if args.job_id else cfg.default_queue)
    if args.action == "list":
        for record in qm.failed_jobs(queue, 0, args.limit):
            _print_failed(record)
        return exitcodes.OK
    if args.action == "retry":
        n = int(qm.retry_failed(args.job_id)) if args.job_id else qm.retry_all_failed(queue)
        print(f"{n} job(s) queued again")
    else:
        ids = [args.job_id] if args.job_id else [r["id"] for r in qm.failed_jobs(queue, 0, 10**6)]
        n = sum(qm.delete(i) for i in ids)
        print(f"{n} job(s) deleted")
    return exitcodes.OK


def _print_failed(record: dict[str, Any]) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.get("finished_at", 0)))
    print(
        f"{record['id']}  {record.get('job', '?')}  {when}  attempts {record.get('attempts')}"
        f"  {record.get('error', '')}"
    )


def cmd_embedded(args: argparse.Namespace) -> int:
    from jobpool.embedded import EmbeddedRedis

    cfg = _config(args)
    if not cfg.redis.is_embedded:
        raise CommandError(f'{args.config} does not use url = "embedded"', exitcodes.CONFIG)
    server = EmbeddedRedis(cfg.redis.data_dir)
    if args.action == "start":
        started = server.ensure()
        print(f"{'started' if started else 'already running'}: {server.url}")
    elif args.action == "stop":
        running = server.is_running()
        server.stop()
        print("stopped" if running else "not running")
    else:
        print(f"{'running' if server.is_running() else 'not running'}: {server.url}")
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
