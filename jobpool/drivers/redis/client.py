"""Redis clients built from the `[redis]` config, embedded server included.

Clients are built with redis-py's own retries off: a blind resend of a claim could claim twice.
Every jobpool operation is either idempotent (enqueue by id, ack, retry) or self-healing (a lost
claim reply is handed back at the next fetch), and the callers retry with backoff themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool

from jobpool import defaults
from jobpool.config.redis_url import address, is_multi_host_url

if TYPE_CHECKING:
    import redis.asyncio

    from jobpool.config import RedisConfig

# What a caller waits out and tries again: a lost or refused connection, and on Redis Cluster no
# node answering (RedisClusterException, raised when the slot map cannot be read, or names no
# owner for a slot) or a command redirected too many times (ClusterError).
CONNECTION_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    OSError,
    redis.exceptions.RedisClusterException,
    redis.exceptions.ClusterError,
)


def _announced() -> dict[str, Any]:
    """What each connection announces (CLIENT SETINFO), given once: without it redis-py 8
    parses its own package metadata for every connection it makes, about 1 ms of CPU, which a
    worker opening 32 connections at once would spend holding the GIL."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py before 8
        return {"lib_version": redis.__version__}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


_ANNOUNCED = _announced()


def _base_options(socket_timeout: float = defaults.SOCKET_TIMEOUT) -> dict[str, Any]:
    return {
        "retry": Retry(NoBackoff(), 0),
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "health_check_interval": 0,
        **_ANNOUNCED,
    }


def client_from_url(url: str, **overrides: Any) -> redis.Redis | RedisCluster:
    """A client for a redis://, rediss:// or unix:// URL, or (through the config's checks) a
    redis+sentinel:// or redis+cluster:// one."""
    if is_multi_host_url(url):
        from jobpool.config import config_from_dict

        return client_from_config(config_from_dict({"redis": {"url": url}}, env={}).redis)
    return redis.Redis.from_url(url, **{**_base_options(), **overrides})


def client_from_config(cfg: RedisConfig) -> redis.Redis | RedisCluster:
    """A client for the configured server (`cfg.mode`): one server, starting the embedded one
    if it is not running; the primary that Sentinel names, followed across failovers; or a
    Redis Cluster."""
    if cfg.mode == "sentinel":
        return sentinel_client(cfg)
    if cfg.mode == "cluster":
        return cluster_client(cfg)
    options = _base_options(cfg.socket_timeout)
    if cfg.username:
        options["username"] = cfg.username
    if cfg.password:
        options["password"] = cfg.password
    if cfg.is_embedded:
        from jobpool.drivers.redis.embedded import EmbeddedRedis

        server = EmbeddedRedis(cfg.data_dir)
        server.ensure()
        return redis.Redis.from_url(server.url, **options)
    if cfg.url:
        if cfg.url.startswith("rediss://"):
            options.update(_ssl_options(cfg))
        return redis.Redis.from_url(cfg.url, **options)
    return redis.Redis(
        host=cfg.host, port=cfg.port, db=cfg.database, **options, **_ssl_options(cfg)
    )


def sentinel_client(cfg: RedisConfig) -> redis.Redis:
    """A client of the primary that the sentinels name for `service_name`.

    Its pool (redis-py's SentinelConnectionPool) asks the sentinels for the primary's address
    each time it opens a connection, so a connection dropped after a failover reconnects to the
    new primary; a READONLY reply (the old primary, demoted) drops the connection and raises a
    ConnectionError, which jobpool's callers treat like any lost connection: reconnect, resend.
    """
    from redis.sentinel import Sentinel

    username, password = cfg.server_credentials
    options = _base_options(cfg.socket_timeout)
    options.update(_credentials(username, password), db=cfg.database)
    ssl = _ssl_options(cfg)
    if ssl:
        ssl.pop("ssl", None)
        options.update(ssl, ssl=True)  # SentinelConnectionPool picks its SSL connection class
    sentinel_options = {**_base_options(cfg.socket_timeout)}
    sentinel_options.update(_credentials(cfg.sentinel_username, cfg.sentinel_password))
    sentinels = Sentinel(
        [address(item) for item in cfg.sentinels], sentinel_kwargs=sentinel_options, **options
    )
    client: redis.Redis = sentinels.master_for(cfg.service_name or "", redis_class=redis.Redis)
    return client


def cluster_client(cfg: RedisConfig) -> RedisCluster:
    """A Redis Cluster client whose startup nodes are host:port or those of the
    redis+cluster:// URL. Its own retries are off, as everywhere (see the module docstring):
    the callers retry, and follow MOVED themselves where needed."""
    from redis.cluster import ClusterNode

    username, password = cfg.server_credentials
    options = _base_options(cfg.socket_timeout)
    options.update(_credentials(username, password), **_ssl_options(cfg))
    options.pop("health_check_interval")
    nodes = [ClusterNode(*address(item)) for item in cfg.cluster_nodes]
    return RedisCluster(startup_nodes=nodes, **options)


def _credentials(username: str | None, password: str | None) -> dict[str, Any]:
    return {
        **({"username": username} if username else {}),
        **({"password": password} if password else {}),
    }


def _ssl_options(cfg: RedisConfig) -> dict[str, Any]:
    if not (cfg.ssl_ca_certs or cfg.ssl_certfile or cfg.ssl_keyfile) and not (
        cfg.url or ""
    ).startswith("rediss://"):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": cfg.ssl_cert_reqs}
    if cfg.url is None:
        options["ssl"] = True
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if getattr(cfg, name):
            options[name] = getattr(cfg, name)
    return options


# The connection options that mean the same to redis-py's asyncio connections; the others (its
# retry, parser and notification objects) are made anew for asyncio.
_ASYNC_OPTIONS = (
    "host",
    "port",
    "path",
    "db",
    "username",
    "password",
    "credential_provider",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
    "client_name",
    "driver_info",
    "lib_version",
    "protocol",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
    "ssl_min_version",
    "ssl_ciphers",
)


def async_client(client: redis.Redis) -> redis.asyncio.Redis:
    """An asyncio client for the server `client` talks to, with the same credentials, TLS and
    timeouts (and redis-py's own retries off, as here)."""
    import redis.asyncio
    import redis.asyncio.connection as aconn
    from redis.asyncio.retry import Retry as AsyncRetry

    if isinstance(client, RedisCluster):
        return _async_cluster_client(client)
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return _async_sentinel_client(pool)
    kinds = {
        redis.connection.UnixDomainSocketConnection: aconn.UnixDomainSocketConnection,
        redis.connection.SSLConnection: aconn.SSLConnection,
    }
    kind = next((a for s, a in kinds.items() if issubclass(pool.connection_class, s)), None)
    options = {k: v for k, v in pool.connection_kwargs.items() if k in _ASYNC_OPTIONS}
    return redis.asyncio.Redis.from_pool(  # the client owns the pool: aclose() closes both
        redis.asyncio.ConnectionPool(
            connection_class=kind or aconn.Connection,
            retry=AsyncRetry(NoBackoff(), 0),
            **options,
        )
    )


def _async_cluster_client(client: RedisCluster) -> redis.asyncio.Redis:
    """The asyncio twin of a Redis Cluster client: the nodes it knows as startup nodes, and the
    options of its node connections (credentials, TLS, timeouts), retries off. It reads the slot
    map at its first command, and routes and follows MOVED as the sync one does."""
    from redis.asyncio.cluster import ClusterNode as AsyncNode
    from redis.asyncio.cluster import RedisCluster as AsyncCluster
    from redis.asyncio.retry import Retry as AsyncRetry

    nodes = client.get_nodes()
    pool = client.get_redis_connection(nodes[0]).connection_pool
    kwargs = pool.connection_kwargs
    options = {k: v for k, v in kwargs.items() if k in _ASYNC_OPTIONS and k not in _PER_NODE}
    if issubclass(pool.connection_class, redis.connection.SSLConnection):
        options["ssl"] = True
    return cast(  # not a subclass, but it has every call the async driver makes
        "redis.asyncio.Redis",
        AsyncCluster(
            startup_nodes=[AsyncNode(n.host, n.port) for n in nodes],
            retry=AsyncRetry(NoBackoff(), 0),
            **options,
        ),
    )


_PER_NODE = ("host", "port", "path", "db")


def _async_sentinel_client(pool: SentinelConnectionPool) -> redis.asyncio.Redis:
    """The asyncio twin of a Sentinel-managed client: the same sentinels, service and options."""
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel

    manager = pool.sentinel_manager
    sentinels = [
        (
            node.connection_pool.connection_kwargs["host"],
            node.connection_pool.connection_kwargs["port"],
        )
        for node in manager.sentinels
    ]
    sentinel_options = {k: v for k, v in manager.sentinel_kwargs.items() if k in _ASYNC_OPTIONS}
    options = {k: v for k, v in pool.connection_kwargs.items() if k in _ASYNC_OPTIONS}
    if issubclass(pool.connection_class, redis.connection.SSLConnection):
        options["ssl"] = True
    retry = AsyncRetry(NoBackoff(), 0)
    async_sentinels = AsyncSentinel(
        sentinels, sentinel_kwargs={**sentinel_options, "retry": retry}, **options
    )
    client: redis.asyncio.Redis = async_sentinels.master_for(
        pool.service_name, redis_class=redis.asyncio.Redis, retry=AsyncRetry(NoBackoff(), 0)
    )
    return client


def probe(cfg: RedisConfig, timeout: float = 1.0) -> tuple[str, bool]:
    """For `jobpool check`: which kind of Redis the config selects (single server, Sentinel or
    Cluster), where, and whether it answers now: (a line saying so, reachable). It never starts
    the embedded server, and waits at most about `timeout` per address."""
    import dataclasses

    if cfg.is_embedded:
        from jobpool.drivers.redis.embedded import EmbeddedRedis

        running = EmbeddedRedis(cfg.data_dir).is_running()
        state = "running" if running else "not running (jobpool start starts it)"
        return f"single server, embedded in {cfg.data_dir}: {state}", True
    quick = dataclasses.replace(cfg, socket_timeout=min(cfg.socket_timeout, timeout))
    if cfg.mode == "sentinel":
        what = (
            f"Sentinel: service {cfg.service_name!r} through {len(cfg.sentinels)} sentinel(s) "
            f"{', '.join(cfg.sentinels)}"
        )
    elif cfg.mode == "cluster":
        what = f"Cluster: startup node(s) {', '.join(cfg.cluster_nodes)}"
    else:
        what = f"single server {cfg.safe_url()}"
    try:
        client = client_from_config(quick)
        try:
            client.ping()
            where = _where(client)
        finally:
            client.close()
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        return f"{what}: NOT reachable ({exc})", False
    return f"{what}: reachable{where}", True


def _where(client: redis.Redis | RedisCluster) -> str:
    """ ", primary HOST:PORT" through Sentinel, ", N primaries" on a Cluster, else ""."""
    if isinstance(client, RedisCluster):
        return f", {len(client.get_primaries())} primaries"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        host, port = pool.get_master_address()
        return f", primary {host}:{port}"
    return ""
