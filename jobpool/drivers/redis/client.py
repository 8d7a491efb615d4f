"""Redis clients built from the `[redis]` config, embedded server included.

Clients are built with redis-py's own retries off: a blind resend of a claim could claim twice.
Every jobpool operation is either idempotent (enqueue by id, ack, retry) or self-healing (a lost
claim reply is handed back at the next fetch), and the callers retry with backoff themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobpool import defaults

if TYPE_CHECKING:
    import redis.asyncio

    from jobpool.config import RedisConfig

CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)


def _base_options(socket_timeout: float = defaults.SOCKET_TIMEOUT) -> dict[str, Any]:
    return {
        "retry": Retry(NoBackoff(), 0),
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "health_check_interval": 0,
    }


def client_from_url(url: str, **overrides: Any) -> redis.Redis:
    """A client for a redis://, rediss:// or unix:// URL."""
    return redis.Redis.from_url(url, **{**_base_options(), **overrides})


def client_from_config(cfg: RedisConfig) -> redis.Redis:
    """A client for the configured server, starting the embedded one if it is not running."""
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

    pool = client.connection_pool
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
