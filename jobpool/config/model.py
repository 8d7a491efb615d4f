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
from jobpool.config.redis_url import (
    CLUSTER_SCHEME,
    EMBEDDED,
    SENTINEL_SCHEME,
    is_multi_host_url,
    mask_url,
    parse_multi_host_url,
)
from jobpool.limits import Limits, RateLimit
from jobpool.names import check_queue_name
from jobpool.schedules.model import Schedule


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

    Three kinds of deployment (`mode`): one server ("single"), a primary that sentinels follow
    across failovers ("sentinel": `sentinels` and `service_name`), and a Redis Cluster
    ("cluster"). A redis+sentinel:// or redis+cluster:// `url` stays as written, and the loader
    fills `sentinels`, `service_name`, `database` and `cluster` from it, so those fields always
    tell the truth. `wait_replicas` makes every write wait for that many replicas (WAIT).
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
    sentinels: tuple[str, ...] = ()
    service_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    cluster: bool = False
    wait_replicas: int = defaults.WAIT_REPLICAS
    wait_timeout: float = defaults.WAIT_TIMEOUT

    @property
    def is_embedded(self) -> bool:
        """True when jobpool should start its own redis-server under data_dir."""
        return self.url == EMBEDDED

    @property
    def mode(self) -> str:
        """Which kind of deployment the client talks to: single, sentinel or cluster."""
        if self.cluster:
            return "cluster"
        return "sentinel" if self.sentinels else "single"

    @property
    def cluster_nodes(self) -> tuple[str, ...]:
        """A cluster's startup nodes ("host:port"): those of a redis+cluster:// URL, else
        host:port."""
        if is_multi_host_url(self.url):
            return parse_multi_host_url(self.url or "").hosts
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{host}:{self.port}",)

    @property
    def server_credentials(self) -> tuple[str | None, str | None]:
        """(username, password) of the Redis servers, from `password` or a multi-host URL."""
        if is_multi_host_url(self.url):
            parsed = parse_multi_host_url(self.url or "")
            return parsed.username or self.username, parsed.password or self.password
        return self.username, self.password

    def safe_url(self) -> str:
        """The server address for logs and status output, with any password replaced by ***."""
        if self.url is not None:
            return mask_url(self.url)
        user = self.username or ""
        auth = f"{user}:***@" if self.password else (f"{user}@" if user else "")
        if self.sentinels:
            hosts = ",".join(self.sentinels)
            return f"{SENTINEL_SCHEME}://{auth}{hosts}/{self.service_name}/{self.database}"
        if self.cluster:
            return f"{CLUSTER_SCHEME}://{auth}{','.join(self.cluster_nodes)}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{auth}{host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        # Written by hand because configs get logged: the password must never show.
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and item.name in ("password", "sentinel_password"):
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
    rate_limit: RateLimit | None = None
    max_running: int | None = None
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
    rate_limit: RateLimit | None = None
    max_running: int | None = None
    timeout: float | None = None
    serve: tuple[str, ...] = ()
    """The queues these workers take jobs from, highest priority first (default: `name`)."""
    weights: tuple[int, ...] = ()
    """With `serve`: pick the queue to look at first by these weights instead of strictly."""

    @property
    def limits(self) -> Limits:
        return Limits(self.rate_limit, self.max_running)

    @property
    def served(self) -> tuple[str, ...]:
        """The queues these workers take jobs from, in priority order."""
        return self.serve or (self.name,)


# The worker settings a queue inherits from [pool]; `serve` and `weights` are its own.
_QUEUE_KEYS = tuple(
    item.name for item in fields(QueueConfig) if item.name not in ("name", "serve", "weights")
)


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
class DashboardConfig:
    """The web dashboard (jobpool/dashboard/): where the master serves it ("host:port", None:
    only `jobpool dashboard` serves it), and the token that allows actions (None: read-only)."""

    listen: str | None = None
    token: str | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """`listen` split for binding, as MetricsConfig.address."""
        return MetricsConfig(self.listen).address

    def __repr__(self) -> str:  # configs get logged: the token must never show
        token = None if self.token is None else "***"
        return f"DashboardConfig(listen={self.listen!r}, token={token!r})"


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
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    schedules: Mapping[str, Schedule] = field(default_factory=lambda: MappingProxyType({}))

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

    def served_limits(self, group: QueueConfig) -> dict[str, Limits]:
        """The limits of each queue `group`'s workers serve: a queue's own table's, when it
        has one, else the group's (a limit belongs to a queue, whoever serves it)."""
        return {name: self.queues.get(name, group).limits for name in group.served}

    def served_queues(self) -> list[str]:
        """Every queue some worker serves, in config order, the default queue alone when
        [queues] is empty."""
        if not self.queues:
            return [self.default_queue]
        found: dict[str, None] = {}
        for group in self.queues.values():
            found.update(dict.fromkeys(group.served))
        return list(found)


def queue_from_pool(name: str, pool: PoolConfig, overrides: Mapping[str, Any]) -> QueueConfig:
    """A queue that inherits every setting it does not override from [pool]."""
    inherited = {key: getattr(pool, key) for key in _QUEUE_KEYS}
    return QueueConfig(name=name, **{**inherited, **overrides})
