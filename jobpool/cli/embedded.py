"""`jobpool embedded start|stop|status`: the redis-server of `url = "embedded"`."""

from __future__ import annotations

import argparse

from jobpool import exitcodes
from jobpool.cli.common import (
    CommandError,
    config_of,
)


def cmd_embedded(args: argparse.Namespace) -> int:
    """start, stop, or status: exit 1 when it is not running, so scripts can test it."""
    from jobpool.drivers.redis.embedded import EmbeddedRedis

    cfg = config_of(args)
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
