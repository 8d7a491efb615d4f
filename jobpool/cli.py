"""The `jobpool` command: check, start, worker, stats, status, failed, embedded.

Exit codes are in jobpool.exitcodes: 1 for an unexpected error or an unknown job or queue, 2 for
a bad config or usage, 3 when Redis cannot be reached, 4 when a job module cannot be imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis

from jobpool import __version__, defaults, display, exitcodes
from jobpool.backoff import Backoff
from jobpool.config import Config, ConfigError, load_config
from jobpool.drivers.redis.client import CONNECTION_ERRORS
from jobpool.log import setup_logging

if TYPE_CHECKING:
    from jobpool.drivers.redis import RedisDriver
    from jobpool.manager import QueueManager

log = logging.getLogger("jobpool")
DEFAULT_CONFIG = os.environ.get("JOBPOOL_CONFIG", "jobpool.toml")
MIN_ATTEMPT = 0.1  # seconds: the shortest connect/read timeout of an attempt to reach Redis


class CommandError(Exception):
    """A message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int = exitcodes.ERROR):
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobpool", description="Redis job queues and workers.")
    parser.add_argument("--version", action="version", version=f"jobpool {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument(
            "-c",
            "--config",
            default=DEFAULT_CONFIG,
            help=f"config file (default: $JOBPOOL_CONFIG or {DEFAULT_CONFIG})",
        )
        p.set_defaults(func=func)
        return p

    command(
        "check",
        "validate a config file and import its job modules; exit 2 listing every problem",
        cmd_check,
    )
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
    p.add_argument(
        "queues",
        nargs="*",
        metavar="QUEUE",
        help="queues (default: the configured ones, and any other that holds jobs in Redis)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = command("status", "print a job's status record as JSON", cmd_status)
    p.add_argument("job_id")
    p.add_argument(
        "--pretty", action="store_true", help="for a person: local times, arguments, traceback"
    )
    _failed_parser(command("failed", "list, retry or delete failed jobs", cmd_failed))
    p = command("embedded", "start, stop or inspect the embedded redis-server", cmd_embedded)
    p.add_argument("action", choices=["start", "stop", "status"])
    return parser


def _failed_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "retry", "delete"])
    p.add_argument("job_id", nargs="?", help="the one failed job to retry or delete")
    p.add_argument(
        "-q", "--queue", help="queue (default: every queue the config serves, for list and --all)"
    )
    p.add_argument(
        "--all", action="store_true", help="retry or delete every failed job of the queue(s)"
    )
    p.add_argument("--limit", type=int, default=100, help="most jobs to list per queue")


def _redis_wait_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-wait",
        type=float,
        default=defaults.REDIS_WAIT,
        metavar="SECONDS",
        help="how long to retry an unreachable Redis before exit 3 "
        f"(default {defaults.REDIS_WAIT:g})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
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
    """What `start` would do with the file: its queues, and its job modules imported, so that
    a typo in `imports` shows here and not as workers that exit 4 in a loop."""
    from jobpool.supervisor.plan import PoolPlan
    from jobpool.unserved import unserved_job_warnings

    cfg = load_config(args.config)
    try:
        import_job_modules(cfg.imports)
    except CommandError as exc:
        raise CommandError(f"{args.config}: {exc}", exitcodes.CONFIG) from None
    for warning in unserved_job_warnings(cfg):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.config}: ok (driver {cfg.driver}, queues: {PoolPlan(cfg).describe()})")
    return exitcodes.OK


def import_job_modules(modules: Sequence[str]) -> None:
    from jobpool.job import import_job_modules as _import

    try:
        _import(modules)
    except ImportError as exc:
        raise CommandError(str(exc), exitcodes.IMPORT_FAILED) from exc


def _manager(cfg: Config, wait: float = 0.0) -> QueueManager:
    """A QueueManager on the configured server; with `wait`, keep trying to reach Redis that
    long (with backoff) before giving up with exit code 3. Neither a pause nor an attempt
    runs past the deadline: each pause is cut to the time left, and so are the connect and
    read timeouts of each attempt."""
    from jobpool.manager import QueueManager

    qm = QueueManager.from_config(cfg)
    if cfg.driver != "redis":
        return qm
    deadline, backoff = time.monotonic() + wait, Backoff(first=0.2, cap=5.0)
    while True:
        timeout = cfg.redis.socket_timeout
        if wait > 0:
            timeout = min(timeout, max(deadline - time.monotonic(), MIN_ATTEMPT))
        try:
            _ping(qm.driver.client, timeout)  # type: ignore[attr-defined]
            return qm
        except redis.AuthenticationError as exc:  # retrying cannot fix credentials
            raise CommandError(
                f"Redis at {cfg.redis.safe_url()} refused the credentials: {exc}", exitcodes.CONFIG
            ) from None
        except CONNECTION_ERRORS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandError(
                    f"cannot reach Redis at {cfg.redis.safe_url()}: {exc}",
                    exitcodes.REDIS_UNREACHABLE,
                ) from None
            pause = min(backoff.next(), left)
            log.warning(
                "cannot reach Redis at %s (%s); retrying in %.1fs", cfg.redis.safe_url(), exc, pause
            )
            time.sleep(pause)


def _ping(client: redis.Redis, timeout: float) -> None:
    """PING on a connection of its own whose connect and read timeouts are `timeout`; the
    client's pooled connections keep the configured ones."""
    pool = client.connection_pool
    options = {**pool.connection_kwargs, "socket_connect_timeout": timeout}
    conn = pool.connection_class(**{**options, "socket_timeout": timeout})
    try:
        conn.connect()  # and the handshake: AUTH, SELECT
        conn.send_command("PING")
        conn.read_response()
    finally:
        conn.disconnect()


def _redis_driver(cfg: Config, command: str) -> tuple[QueueManager, RedisDriver]:
    """The manager and its Redis driver, for the commands that read what is stored. The
    memory driver keeps its jobs inside the one process that pushed them, so a command has
    nothing to read there."""
    from jobpool.drivers.redis import RedisDriver

    if cfg.driver != "redis":
        raise CommandError(
            f'{command} needs the redis driver, and {cfg.source} sets driver = "{cfg.driver}": '
            "the memory driver lives in one process, so no other process can see its jobs",
            exitcodes.CONFIG,
        )
    qm = _manager(cfg)
    assert isinstance(qm.driver, RedisDriver)
    return qm, qm.driver


def cmd_worker(args: argparse.Namespace) -> int:
    from jobpool.worker.events import TitleEvents
    from jobpool.worker.loop import Worker

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
    from jobpool.supervisor.master import Supervisor

    cfg = _config(args)
    if cfg.pool.preload:
        import_job_modules(cfg.imports)
        _log_unserved(cfg)  # without preload, a worker does it after its own import
    from jobpool.supervisor.metrics import MetricsError

    qm = _manager(cfg, wait=args.redis_wait)
    try:
        return Supervisor(cfg, args.config, qm.driver, preloaded=cfg.pool.preload).run()
    except MetricsError as exc:
        raise CommandError(str(exc), exitcodes.CONFIG) from None


def _log_unserved(cfg: Config) -> None:
    from jobpool.unserved import unserved_job_warnings

    for warning in unserved_job_warnings(cfg):
        log.warning("%s", warning)


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

    cfg = _config(args)
    qm, driver = _redis_driver(cfg, "stats")
    served = served_queues(cfg)
    queues = [_queue_name(q) for q in args.queues] or served + [
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


def _queue_name(name: str) -> str:
    from jobpool.names import check_queue_name

    try:
        return check_queue_name(name)
    except ValueError as exc:
        raise CommandError(str(exc), exitcodes.CONFIG) from None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}s"
    return str(value)


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _config(args)
    qm, driver = _redis_driver(cfg, "status")
    record = qm.get_job_status(args.job_id)
    if record is None:
        raise CommandError(f"no job {args.job_id!r} (unknown, or its record expired)")
    if not args.pretty:
        print(json.dumps(record, indent=2, sort_keys=True))
        return exitcodes.OK
    [body] = driver.payloads(record.get("queue") or _queue_of(args.job_id), [args.job_id])
    print(display.pretty_record(record, body))
    return exitcodes.OK


def cmd_failed(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _check_failed_usage(args)
    qm, driver = _redis_driver(cfg, "failed")
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
    if args.job_id and args.queue and _queue_of(args.job_id) != args.queue:
        raise CommandError(f"job {args.job_id!r} is not in queue {args.queue!r}", exitcodes.CONFIG)


def _queue_of(job_id: str) -> str:
    from jobpool.ids import queue_of

    try:
        return queue_of(job_id)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _failed_queues(cfg: Config, driver: RedisDriver, queue: str | None) -> list[str]:
    """-q QUEUE, or every queue the config serves. A queue that is neither configured nor
    holds anything in Redis is a typo: say so rather than find nothing in it."""
    from jobpool.unserved import served_queues

    served = served_queues(cfg)
    if queue is None:
        return served
    _queue_name(queue)
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
    _queue_of(job_id)  # a malformed id is an unknown job, not a traceback
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


def cmd_embedded(args: argparse.Namespace) -> int:
    """start, stop, or status: exit 1 when it is not running, so scripts can test it."""
    from jobpool.drivers.redis.embedded import EmbeddedRedis

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
        running = server.is_running()
        print(f"{'running' if running else 'not running'}: {server.url}")
        return exitcodes.OK if running else exitcodes.ERROR
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
