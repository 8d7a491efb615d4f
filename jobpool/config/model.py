"""The validated configuration: frozen dataclasses whose defaults are the documented defaults,
and the error that lists every problem found. load.py builds them from TOML and the environment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jobpool.config.redis_url import EMBEDDED, mask_url
from jobpool.config.schema import queue_name

MiB = 1024 * 1024


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
    host: str = "localhost"
    port: int = 6379
    username: str | None = None
    password: str | None = None
    database: int = 0
    prefix: str = "jobpool"
    data_dir: Path = Path(".jobpool")
    socket_timeout: float = 5.0
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = "required"

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
    """How long finished jobs are kept (seconds) and how big a job's payload may be (bytes)."""

    completed_ttl: float = 86400.0
    failed_ttl: float = 604800.0
    max_payload: int = MiB


@dataclass(frozen=True)
class PoolConfig:
    """Supervisor-wide settings; also the defaults of every queue."""

    workers: int = 1
    memory_limit: int | None = None
    memory_hard_limit: int | None = None
    max_jobs: int = 0
    graceful_timeout: float = 30.0
    lease: float = 30.0
    prefetch: int = 32
    preload: bool = False
    memory_check_interval: float = 1.0
    timeout: float | None = None
    restart_backoff_max: float = 60.0


@dataclass(frozen=True)
class QueueConfig:
    """One queue's worker settings; each field defaults to the [pool] value of the same name."""

    name: str
    workers: int = 1
    memory_limit: int | None = None
    memory_hard_limit: int | None = None
    max_jobs: int = 0
    graceful_timeout: float = 30.0
    lease: float = 30.0
    prefetch: int = 32
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
    driver: str = "redis"
    default_queue: str = "default"
    imports: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "text"
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
            queue_name(name)
        except ValueError as exc:
            raise ConfigError([f"queue name {name!r}: {exc}"]) from None
        return queue_from_pool(name, self.pool, {})


def queue_from_pool(name: str, pool: PoolConfig, overrides: Mapping[str, Any]) -> QueueConfig:
    """A queue that inherits every setting it does not override from [pool]."""
    inherited = {key: getattr(pool, key) for key in _QUEUE_KEYS}
    return QueueConfig(name=name, **{**inherited, **overrides})
