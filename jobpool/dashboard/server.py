"""Serving the dashboard: uvicorn in this process, for `jobpool dashboard` (run by a person, or
by a master as its child with `--parent`)."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time

from jobpool.config import Config
from jobpool.drivers.redis import RedisDriver

log = logging.getLogger("jobpool.dashboard")
PARENT_CHECK = 1.0  # seconds between looks at whether the master that started us still runs


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(config: Config, driver: RedisDriver, host: str, port: int, parent: int | None) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's own handlers), or until `parent` exits."""
    import uvicorn

    from jobpool.dashboard.app import create_app

    if not is_loopback(host) and config.dashboard.token is None:
        log.warning(
            "the dashboard listens on %s without a token: anyone who can reach it sees every "
            "job's arguments and errors (it stays read-only); set [dashboard] token or "
            "JOBPOOL_DASHBOARD_TOKEN, or listen on 127.0.0.1",
            host,
        )
    mode = "actions allowed after sign-in" if config.dashboard.token else "read-only"
    log.info(
        "dashboard on http://%s:%d/ (%s), Redis at %s", host, port, mode, config.redis.safe_url()
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, driver),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )
    )
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(server, parent), daemon=True).start()
    server.run()


def _watch_parent(server: object, parent: int) -> None:
    """Stop when the master that started us is gone (even SIGKILLed): we were re-parented."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK)
    log.warning("the master (pid %d) is gone: the dashboard stops", parent)
    server.should_exit = True  # type: ignore[attr-defined]
