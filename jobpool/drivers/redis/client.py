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
