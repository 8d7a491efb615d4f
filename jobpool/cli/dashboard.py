"""`jobpool dashboard`: serve the web dashboard in the foreground (see jobpool/dashboard/)."""

from __future__ import annotations

import argparse

from jobpool import defaults, exitcodes
from jobpool.cli.common import CommandError, config_of, redis_driver
from jobpool.config.schema import listen


def cmd_dashboard(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    try:
        address = listen(args.listen or cfg.dashboard.listen or defaults.DASHBOARD_LISTEN)
    except ValueError as exc:
        raise CommandError(f"--listen {exc}", exitcodes.CONFIG) from None
    try:
        from jobpool.dashboard.server import serve
    except ImportError as exc:
        raise CommandError(
            f"the dashboard needs its web stack ({exc.name} is missing): "
            "pip install 'jobpool[dashboard]'",
            exitcodes.CONFIG,
        ) from None
    _, driver = redis_driver(cfg, "dashboard")
    host, _, port = address.rpartition(":")
    serve(cfg, driver, host.strip("[]"), int(port), args.parent)
    return exitcodes.OK
