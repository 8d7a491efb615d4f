"""The validated configuration: frozen dataclasses whose defaults are the documented defaults
(defined in jobpool/defaults.py), and the error that lists every problem found. load.py builds
them from TOML and the environment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jobpool import defaults
from jobpool.config.redis_url import EMBEDDED, mask_url
from jobpool.names import check_queue_name


class ConfigError(Exception):
    """Every problem found in a config, one message each; str() puts one per line."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the list intact when the error crosses a process boundary.
        return (type(self), (self.problems,))


# --------------------------------------------------------------------------------------------
# The dataclasses. Their defaults are the documented defaults; the loader only fills in what the
# file (or the environment) sets.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisConfig:
    """Where the Redis server is. `url` (when set) wins over host/port/database.

    Invariant kept by the loader: a password lives either in `url` or in `password`, never both,
    so a client may pass `password=` next to the URL without one silently beating the other.
    """

    url: str | None = None
    host: str = defaults.REDIS_HOST
    port: int = defaults.REDIS_PORT
    username: str | None = None
    password: str | None = None
    database: int = defaults.REDIS_DATABASE
    prefix: str = defaults.PREFIX
    data_dir: Path = Path(defaults.DATA_DIR)
    socket_timeout: float = defaults.SOCKET_TIMEOUT
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = defaults.SSL_CERT_REQS

    @property
    def is_embedded(self) -> bool:
        """True when jobpool should start its own redis-server under data_dir."""
        return self.url == EMBEDDED

    def safe_url(self) -> str:
        """The server address for logs and status output, with any password replaced by ***."""
        if self.url is not None:
            return mask_url(self.url)
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = self.username or ""
        auth = f"{user}:***@" if self.password else (f"{user}@" if user else "")
        return f"redis://{auth}{host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        # Written by hand because configs get logged: the password must never show.
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and item.name == "password":
                value = "***"
            elif value is not None and item.name == "url":
                value = mask_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"RedisConfig({', '.join(shown)})"


@dataclass(frozen=True)
class JobsConfig:
    """How long finished jobs are kept (seconds), and how big a job's payload and its result
    may be (bytes)."""

    completed_ttl: float = defaults.COMPLETED_TTL
    failed_ttl: float = defaults.FAILED_TTL
    max_payload: int = defaults.MAX_PAYLOAD
    max_result: int = defaults.MAX_RESULT


@dataclass(frozen=True)
class PoolConfig:
    """Supervisor-wide settings; also the defaults of every queue."""

    workers: int = defaults.WORKERS
    memory_limit: int | None = None
    memory_hard_limit: int | None = None
    max_jobs: int = defaults.MAX_JOBS
    graceful_timeout: float = defaults.GRACEFUL_TIMEOUT
    lease: float = defaults.LEASE
    prefetch: int = defaults.PREFETCH
    concurrency: int = defaults.CONCURRENCY
    preload: bool = defaults.PRELOAD
    memory_check_interval: float = defaults.MEMORY_CHECK_INTERVAL
    timeout: float | None = None
    restart_backoff_max: float = defaults.RESTART_BACKOFF_MAX


@dataclass(frozen=True)
class QueueConfig:
    """One queue's worker settings; each field defaults to the [pool] value of the same name."""

    name: str
    workers: int = defaults.WORKERS
    memory_limit: int | None = None
    memory_hard_limit: int | None = None
    max_jobs: int = defaults.MAX_JOBS
    graceful_timeout: float = defaults.GRACEFUL_TIMEOUT
    lease: float = defaults.LEASE
    prefetch: int = defaults.PREFETCH
    concurrency: int = defaults.CONCURRENCY
    timeout: float | None = None


_QUEUE_KEYS = tuple(item.name for item in fields(QueueConfig) if item.name != "name")


@dataclass(frozen=True)
class MetricsConfig:
    """Where to serve metrics ("host:port"), or None for no metrics endpoint."""

    listen: str | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """`listen` split for socket.bind(): ("127.0.0.1", 9100); IPv6 brackets removed."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration. `source` is the file path, or "<defaults>"."""

    source: str = "<defaults>"
    base_dir: Path = Path(".")
    driver: str = defaults.DRIVER
    default_queue: str = defaults.DEFAULT_QUEUE
    imports: tuple[str, ...] = ()
    log_level: str = defaults.LOG_LEVEL
    log_format: str = defaults.LOG_FORMAT
    redis: RedisConfig = field(default_factory=RedisConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    queues: Mapping[str, QueueConfig] = field(default_factory=lambda: MappingProxyType({}))
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def queue(self, name: str) -> QueueConfig:
        """The settings of queue `name`: its [queues] entry, else the [pool] defaults.

        Jobs may be pushed to any queue, listed or not, so an unlisted but valid name is fine.
        """
        configured = self.queues.get(name)
        if configured is not None:
            return configured
        try:
            check_queue_name(name)
        except ValueError as exc:
            raise ConfigError([str(exc)]) from None
        return queue_from_pool(name, self.pool, {})


def queue_from_pool(name: str, pool: PoolConfig, overrides: Mapping[str, Any]) -> QueueConfig:
    """A queue that inherits every setting it does not override from [pool]."""
    inherited = {key: getattr(pool, key) for key in _QUEUE_KEYS}
    return QueueConfig(name=name, **{**inherited, **overrides})
