"""`make_driver`: the one place that turns what a user passes (nothing, a URL, a client, a
config's [redis] section, a driver) into a driver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import redis
from redis.cluster import RedisCluster

from jobpool import defaults
from jobpool.drivers.base import Driver
from jobpool.drivers.memory import MemoryDriver
from jobpool.drivers.redis import RedisDriver
from jobpool.drivers.redis.client import client_from_config, client_from_url

if TYPE_CHECKING:
    from jobpool.config import RedisConfig


def make_driver(
    connection: str | redis.Redis | RedisConfig | Driver | None,
    *,
    prefix: str,
    completed_ttl: float,
    failed_ttl: float,
) -> Driver:
    """The driver for `connection`: None keeps queues in this process's memory; a URL,
    "embedded" (the server of ./.jobpool), a redis-py client or a config's [redis] section
    selects Redis; a driver is used as it is."""
    if connection is None:
        return MemoryDriver(completed_ttl=completed_ttl, failed_ttl=failed_ttl)
    from jobpool.config import RedisConfig  # here: a producer need not load the config code

    if connection == "embedded":  # as url = "embedded" in a config file gives
        connection = RedisConfig(url="embedded", data_dir=Path(defaults.DATA_DIR).absolute())
    client: redis.Redis | RedisCluster | None = None
    if isinstance(connection, RedisConfig):
        client = client_from_config(connection)
    elif isinstance(connection, str):
        client = client_from_url(connection)
    elif isinstance(connection, (redis.Redis, RedisCluster)):
        client = connection
    else:
        return connection
    durable = connection if isinstance(connection, RedisConfig) else RedisConfig()
    # A RedisCluster speaks the same commands; the driver groups its work by slot.
    return RedisDriver(
        cast(redis.Redis, client),
        prefix=prefix,
        completed_ttl=completed_ttl,
        failed_ttl=failed_ttl,
        wait_replicas=durable.wait_replicas,
        wait_timeout=durable.wait_timeout,
    )
