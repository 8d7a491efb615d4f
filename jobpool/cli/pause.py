"""`jobpool pause QUEUE` and `jobpool resume QUEUE`: a flag in Redis that every worker of the
queue, on every host, reads at each claim. Running jobs finish; nothing new is claimed."""

from __future__ import annotations

import argparse

from jobpool import exitcodes
from jobpool.cli.common import CommandError, config_of, redis_driver
from jobpool.names import check_queue_name


def cmd_pause(args: argparse.Namespace) -> int:
    return _set(args, paused=True)


def cmd_resume(args: argparse.Namespace) -> int:
    return _set(args, paused=False)


def _set(args: argparse.Namespace, paused: bool) -> int:
    cfg = config_of(args)
    try:
        check_queue_name(args.queue)
    except ValueError as exc:
        raise CommandError(str(exc), exitcodes.CONFIG) from None
    qm, driver = redis_driver(cfg, "pause" if paused else "resume")
    changed = driver.set_paused(args.queue, paused)
    if paused:
        print(
            f"queue {args.queue} paused: its workers finish what they run and claim nothing more"
            if changed
            else f"queue {args.queue} was already paused"
        )
    else:
        print(
            f"queue {args.queue} resumed: its workers claim again within a second"
            if changed
            else f"queue {args.queue} was not paused"
        )
    qm.close()
    return exitcodes.OK
