"""The `jobpool` command: check, start, worker, stats, status, cancel, pause, resume, failed,
dashboard, embedded.

Exit codes are in jobpool.exitcodes: 1 for an unexpected error or an unknown job or queue, 2 for
a bad config or usage, 3 when Redis cannot be reached, 4 when a job module cannot be imported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from jobpool import __version__, defaults, exitcodes
from jobpool.cli.common import DEFAULT_CONFIG, CommandError
from jobpool.cli.dashboard import cmd_dashboard
from jobpool.cli.embedded import cmd_embedded
from jobpool.cli.failed import cmd_failed
from jobpool.cli.pause import cmd_pause, cmd_resume
from jobpool.cli.run import cmd_check, cmd_start, cmd_worker
from jobpool.cli.schedules import cmd_schedules
from jobpool.cli.stats import cmd_cancel, cmd_stats, cmd_status
from jobpool.config import ConfigError

__all__ = ["CommandError", "main"]


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
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="run up to N jobs at once on threads (default: the queue's `concurrency`)",
    )
    _redis_wait_option(p)
    p = command("stats", "print each queue's counts, throughput and oldest waiting job", cmd_stats)
    p.add_argument(
        "queues",
        nargs="*",
        metavar="QUEUE",
        help="queues (default: the configured ones, and any other that holds jobs in Redis)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = command(
        "schedules",
        "list each schedule with its next run and its last run (the job it pushed)",
        cmd_schedules,
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = command("status", "print a job's status record as JSON", cmd_status)
    p.add_argument("job_id")
    p.add_argument(
        "--pretty", action="store_true", help="for a person: local times, arguments, traceback"
    )
    p = command(
        "cancel",
        "cancel a job: one that waits never runs; one that runs is stopped (exit 1: no such job, "
        "or it has finished)",
        cmd_cancel,
    )
    p.add_argument("job_id")
    p = command("pause", "pause a queue: its workers claim nothing until it is resumed", cmd_pause)
    p.add_argument("queue")
    p = command("resume", "let a paused queue's workers claim again", cmd_resume)
    p.add_argument("queue")
    _failed_parser(command("failed", "list, retry or delete failed jobs", cmd_failed))
    p = command(
        "dashboard", "serve the web dashboard (pip install 'jobpool[dashboard]')", cmd_dashboard
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"where to serve (default: [dashboard] listen, else {defaults.DASHBOARD_LISTEN})",
    )
    p.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # a master's pid: exit with it
    p = command("embedded", "start, stop or inspect the embedded server (Valkey)", cmd_embedded)
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
