"""Load jobpool's TOML config into frozen dataclasses, validated once, at startup.

Why validate everything up front: a supervisor that starts with a typo in its config fails hours
later, in a child process, in a log nobody reads. Here every problem in the file (and in the
environment variables that override it) is collected and reported in one ConfigError, each message
naming the file, the key path and what is wrong, so that one edit fixes them all.

Environment variables (the names of the PHP project this replaces) override the file:
QUEUE_DRIVER, QUEUE_DEFAULT, REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD,
REDIS_DB and JOBPOOL_PREFIX. Empty variables count as unset. REDIS_URL beats REDIS_HOST/REDIS_PORT,
which beat the file; REDIS_PASSWORD always applies, also on top of a URL.

Split by job: this module holds the dataclasses, the entry points and the section builders;
config_values.py the value converters and the schema (which key takes what), config_reader.py the
key walking that collects problems, redis_url.py the URL schemes and password masking.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jobpool.config_reader import Reader, key_path
from jobpool.config_values import (
    INTEGER_KEYS,
    JOBS_FIELDS,
    METRICS_FIELDS,
    POOL_FIELDS,
    QUEUE_FIELDS,
    REDIS_ALIASES,
    REDIS_ENV,
    SECTIONS,
    TOP_ENV,
    TOP_FIELDS,
    describe,
    queue_name,
    redis_fields,
)
from jobpool.redis_url import EMBEDDED, mask_url, url_has_password
from jobpool.sizes import format_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Config",
    "ConfigError",
    "JobsConfig",
    "MetricsConfig",
    "PoolConfig",
    "QueueConfig",
    "RedisConfig",
    "config_from_dict",
    "default_config",
    "load_config",
]

MiB = 1024 * 1024

_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|(end of document))\)\s*$")


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
        return _queue_from_pool(name, self.pool, {})


def _queue_from_pool(name: str, pool: PoolConfig, overrides: Mapping[str, Any]) -> QueueConfig:
    """A queue that inherits every setting it does not override from [pool]."""
    inherited = {key: getattr(pool, key) for key in _QUEUE_KEYS}
    return QueueConfig(name=name, **{**inherited, **overrides})


# --------------------------------------------------------------------------------------------
# Public entry points.
# --------------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, parse and validate a TOML config file; raise ConfigError listing every problem."""
    source = os.fspath(path)
    data = _read_toml(Path(source), source)
    base_dir = Path(source).absolute().parent
    return config_from_dict(data, source=source, base_dir=base_dir, env=env)


def default_config(env: Mapping[str, str] | None = None) -> Config:
    """The configuration used without a file: every default, plus environment overrides."""
    return config_from_dict({}, source="<defaults>", env=env)


def config_from_dict(
    data: Mapping[str, Any],
    source: str = "<dict>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate already-parsed TOML data; `source` names it in messages, `env` overrides it."""
    env = os.environ if env is None else env
    base_dir = Path.cwd() if base_dir is None else Path(base_dir)
    reader = Reader(source)
    top = reader.table(data, "", TOP_FIELDS)
    top.update(reader.env(env, TOP_ENV, TOP_FIELDS))
    sections = {name: top.pop(name, {}) for name in SECTIONS}
    redis = _build_redis(reader, sections["redis"], base_dir, env)
    jobs = JobsConfig(**reader.table(sections["jobs"], "jobs", JOBS_FIELDS))
    pool = _build_pool(reader, sections["pool"])
    queues = _build_queues(reader, sections["queues"], pool)
    metrics = MetricsConfig(**reader.table(sections["metrics"], "metrics", METRICS_FIELDS))
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(
        source=source,
        base_dir=base_dir,
        redis=redis,
        jobs=jobs,
        pool=pool,
        queues=queues,
        metrics=metrics,
        **top,
    )


def _read_toml(path: Path, source: str) -> dict[str, Any]:
    """Parse the file, turning every way it can fail into a ConfigError naming it."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        problem = f"config file not found{where}"
    except IsADirectoryError:
        problem = "is a directory, not a config file"
    except OSError as exc:
        problem = f"cannot read config file: {exc.strerror or exc}"
    except UnicodeDecodeError:
        problem = "invalid TOML: the file is not valid UTF-8"
    except tomllib.TOMLDecodeError as exc:
        problem = _toml_problem(exc)
    raise ConfigError([f"{source}: {problem}"])


def _toml_problem(exc: ValueError) -> str:
    """Move tomllib's "(at line L, column C)" suffix to the front, where editors look for it."""
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match is None:
        return f"invalid TOML: {message}"
    where = "end of file" if match[3] else f"line {match[1]}, column {match[2]}"
    return f"{where}: invalid TOML: {message[: match.start()]}"


# --------------------------------------------------------------------------------------------
# Sections that need more than a table read.
# --------------------------------------------------------------------------------------------


def _build_redis(reader: Reader, raw: Any, base_dir: Path, env: Mapping[str, str]) -> RedisConfig:
    """[redis] from the file, then the environment on top (see _apply_redis_env)."""
    converters = redis_fields(base_dir)
    values = reader.table(raw, "redis", converters, REDIS_ALIASES)
    if url_has_password(values.get("url")) and "password" in values:
        reader.error(
            "redis.password",
            "the password is also set inside redis.url: set it in only one place",
        )
    _apply_redis_env(values, reader.env(env, REDIS_ENV, converters, INTEGER_KEYS))
    values.setdefault("data_dir", base_dir / ".jobpool")
    return RedisConfig(**values)


def _apply_redis_env(values: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Precedence: REDIS_URL > REDIS_HOST/REDIS_PORT > file; REDIS_PASSWORD always applies.

    Keeps the RedisConfig invariant that a password is in the URL or in `password`, not both.
    """
    if "url" in overrides:
        if url_has_password(overrides["url"]):
            values.pop("password", None)
    elif "host" in overrides or "port" in overrides:
        values["url"] = None
    values.update(overrides)
    if "password" in overrides and values.get("url"):
        values["url"] = mask_url(values["url"], replacement=None)


def _build_pool(reader: Reader, raw: Any) -> PoolConfig:
    pool = PoolConfig(**reader.table(raw, "pool", POOL_FIELDS))
    _check_limits(reader, "pool", pool.memory_limit, pool.memory_hard_limit)
    return pool


def _build_queues(reader: Reader, raw: Any, pool: PoolConfig) -> Mapping[str, QueueConfig]:
    """[queues.NAME] tables; each queue inherits from [pool] whatever it does not set."""
    if not isinstance(raw, Mapping):
        reader.error("queues", f"must be a table of queue tables, got {describe(raw)}")
        return MappingProxyType({})
    queues: dict[str, QueueConfig] = {}
    for name, table in raw.items():
        path = key_path("queues", name)
        valid_name = True
        try:
            queue_name(name)
        except ValueError as exc:
            reader.error(path, f"invalid queue name: {exc}")
            valid_name = False
        values = reader.table(table, path, QUEUE_FIELDS)
        queue = _queue_from_pool(name, pool, values)
        if {"memory_limit", "memory_hard_limit"} & values.keys():
            _check_limits(reader, path, queue.memory_limit, queue.memory_hard_limit)
        if valid_name:
            queues[name] = queue
    return MappingProxyType(queues)


def _check_limits(reader: Reader, path: str, soft: int | None, hard: int | None) -> None:
    """The hard limit kills a worker mid-job, so it must leave room above the soft limit."""
    if soft is not None and hard is not None and hard <= soft:
        reader.error(
            f"{path}.memory_hard_limit",
            f"must be above memory_limit ({format_size(soft)}), got {format_size(hard)}",
        )
