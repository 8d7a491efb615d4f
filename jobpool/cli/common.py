"""What every `jobpool` command shares: its error type, the config it reads, and how it
reaches Redis (retrying within `--redis-wait`, never past it)."""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis

from jobpool import exitcodes
from jobpool.backoff import Backoff
from jobpool.config import Config, load_config
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


def config_of(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    setup_logging(cfg.log_level, cfg.log_format)
    return cfg


def import_job_modules(modules: Sequence[str]) -> None:
    from jobpool.job import import_job_modules as _import

    try:
        _import(modules)
    except ImportError as exc:
        raise CommandError(str(exc), exitcodes.IMPORT_FAILED) from exc


def manager_for(cfg: Config, wait: float = 0.0) -> QueueManager:
    """A QueueManager on the configured server; with `wait`, keep trying to reach Redis that
    long (with backoff) before giving up with exit code 3. Neither a pause nor an attempt
    runs past the deadline: each pause is cut to the time left, and so are the connect and
    read timeouts of each attempt."""
    from jobpool.manager import QueueManager

    if cfg.driver != "redis":
        return QueueManager.from_config(cfg)
    deadline, backoff = time.monotonic() + wait, Backoff(first=0.2, cap=5.0)
    qm = None
    while True:
        timeout = cfg.redis.socket_timeout
        if wait > 0:
            timeout = min(timeout, max(deadline - time.monotonic(), MIN_ATTEMPT))
        try:
            # In the loop: a Cluster client reads the slot map as it is made, so it can fail.
            qm = qm or QueueManager.from_config(cfg)
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
    client's pooled connections keep the configured ones. On Redis Cluster, every primary."""
    from jobpool.drivers.redis.nodes import primaries

    for node in primaries(client):
        pool = node.connection_pool
        options = {**pool.connection_kwargs, "socket_connect_timeout": timeout}
        conn = pool.connection_class(**{**options, "socket_timeout": timeout})
        try:
            conn.connect()  # and the handshake: AUTH, SELECT
            conn.send_command("PING")
            conn.read_response()
        finally:
            conn.disconnect()


def redis_driver(cfg: Config, command: str) -> tuple[QueueManager, RedisDriver]:
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
    qm = manager_for(cfg)
    assert isinstance(qm.driver, RedisDriver)
    return qm, qm.driver


def queue_argument(name: str) -> str:
    from jobpool.names import check_queue_name

    try:
        return check_queue_name(name)
    except ValueError as exc:
        raise CommandError(str(exc), exitcodes.CONFIG) from None


def queue_of_id(job_id: str) -> str:
    from jobpool.ids import queue_of

    try:
        return queue_of(job_id)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
