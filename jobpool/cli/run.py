"""The commands that run things: `check` (what `start` would do), `start` (the master) and
`worker` (one standalone worker)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from jobpool import exitcodes
from jobpool.cli.common import (
    CommandError,
    config_of,
    import_job_modules,
    log,
    manager_for,
)
from jobpool.config import Config, load_config


def cmd_check(args: argparse.Namespace) -> int:
    """What `start` would do with the file: its queues, and its job modules imported, so that
    a typo in `imports` shows here and not as workers that exit 4 in a loop."""
    from jobpool.schedules.resolve import resolve
    from jobpool.supervisor.plan import PoolPlan
    from jobpool.unserved import unserved_job_warnings

    cfg = load_config(args.config)
    try:
        import_job_modules(cfg.imports)
    except CommandError as exc:
        raise CommandError(f"{args.config}: {exc}", exitcodes.CONFIG) from None
    for warning in unserved_job_warnings(cfg):
        print(f"warning: {warning}", file=sys.stderr)
    resolve(cfg)  # ConfigError naming a schedule whose job or arguments do not resolve
    schedules = f", schedules: {', '.join(cfg.schedules)}" if cfg.schedules else ""
    print(f"{args.config}: ok (driver {cfg.driver}, queues: {PoolPlan(cfg).describe()}{schedules})")
    if cfg.driver == "redis":  # which of single, Sentinel, Cluster; and can it be reached now
        from jobpool.drivers.redis.client import probe

        line, reachable = probe(cfg.redis)
        print(f"redis: {line}", file=sys.stdout if reachable else sys.stderr)
    return exitcodes.OK


def cmd_worker(args: argparse.Namespace) -> int:
    from jobpool.worker.events import TitleEvents
    from jobpool.worker.threaded import make_worker

    cfg = config_of(args)
    queue = args.queue or cfg.default_queue
    _check_listed(cfg, queue)
    qcfg = cfg.queue(queue)
    if args.concurrency is not None:
        if not 1 <= args.concurrency <= 1000:
            raise CommandError("--concurrency must be from 1 to 1000", exitcodes.CONFIG)
        qcfg = dataclasses.replace(qcfg, concurrency=args.concurrency)
    import_job_modules(cfg.imports)
    qm = manager_for(cfg, wait=args.redis_wait)
    worker = make_worker(qm, qcfg, events=TitleEvents(queue), limits=cfg.served_limits(qcfg))
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

    cfg = config_of(args)
    if cfg.pool.preload:
        import_job_modules(cfg.imports)
        _log_unserved(cfg)  # without preload, a worker does it after its own import
    from jobpool.supervisor.metrics import MetricsError

    qm = manager_for(cfg, wait=args.redis_wait)
    try:
        return Supervisor(cfg, args.config, qm.driver, preloaded=cfg.pool.preload).run()
    except MetricsError as exc:
        raise CommandError(str(exc), exitcodes.CONFIG) from None


def _log_unserved(cfg: Config) -> None:
    from jobpool.unserved import unserved_job_warnings

    for warning in unserved_job_warnings(cfg):
        log.warning("%s", warning)
