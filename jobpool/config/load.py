"""Load jobpool's TOML config into frozen dataclasses, validated once, at startup.

Why validate everything up front: a supervisor that starts with a typo in its config fails hours
later, in a child process, in a log nobody reads. Here every problem in the file (and in the
environment variables that override it) is collected and reported in one ConfigError, each message
naming the file, the key path and what is wrong, so that one edit fixes them all.

Environment variables (the names of the PHP project this replaces) override the file:
QUEUE_DRIVER, QUEUE_DEFAULT, REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD,
REDIS_DB and JOBPOOL_PREFIX; for Sentinel and Cluster REDIS_SENTINELS ("host:port,host:port"),
REDIS_SERVICE_NAME, REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD, REDIS_CLUSTER and
REDIS_WAIT_REPLICAS; JOBPOOL_DASHBOARD_TOKEN sets [dashboard] token. Empty variables count as
unset. REDIS_URL beats REDIS_HOST/REDIS_PORT, which beat the file; REDIS_PASSWORD always
applies, also on top of a URL.

Split by job: this module holds the entry points and the section builders; model.py the
dataclasses; schema.py the value converters and the schema (which key takes what), reader.py the
key walking that collects problems, redis_url.py the URL schemes and password masking, units.py
sizes and durations.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jobpool.config.model import (
    Config,
    ConfigError,
    DashboardConfig,
    JobsConfig,
    MetricsConfig,
    PoolConfig,
    QueueConfig,
    RedisConfig,
    queue_from_pool,
)
from jobpool.config.reader import Reader, key_path
from jobpool.config.redis_url import (
    EMBEDDED,
    SENTINEL_SCHEME,
    is_multi_host_url,
    mask_url,
    parse_multi_host_url,
    url_has_password,
)
from jobpool.config.schedules import build_schedules
from jobpool.config.schema import (
    BOOLEAN_KEYS,
    DASHBOARD_ENV,
    DASHBOARD_FIELDS,
    INTEGER_KEYS,
    JOBS_FIELDS,
    METRICS_FIELDS,
    POOL_FIELDS,
    QUEUE_FIELDS,
    QUEUE_ONLY_FIELDS,
    REDIS_ALIASES,
    REDIS_ENV,
    SECTIONS,
    TOP_ENV,
    TOP_FIELDS,
    describe,
    redis_fields,
)
from jobpool.config.units import format_size
from jobpool.defaults import DATA_DIR
from jobpool.names import check_queue_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|(end of document))\)\s*$")


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
    dashboard = reader.table(sections["dashboard"], "dashboard", DASHBOARD_FIELDS)
    dashboard.update(reader.env(env, DASHBOARD_ENV, DASHBOARD_FIELDS))
    schedules = build_schedules(reader, sections["schedules"])
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
        dashboard=DashboardConfig(**dashboard),
        schedules=schedules,
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
    overrides = reader.env(env, REDIS_ENV, converters, INTEGER_KEYS, BOOLEAN_KEYS)
    _apply_redis_env(values, overrides)
    _apply_multi_host_url(reader, values)
    _check_deployment(reader, values)
    values.setdefault("data_dir", base_dir / DATA_DIR)
    return RedisConfig(**values)


def _apply_multi_host_url(reader: Reader, values: dict[str, Any]) -> None:
    """A redis+sentinel:// or redis+cluster:// URL sets the fields it stands for, so that
    `sentinels`, `service_name`, `database` and `cluster` always tell the truth."""
    url = values.get("url")
    if url is None or not is_multi_host_url(url):
        return
    parsed = parse_multi_host_url(url)  # already checked by the converter
    derived: dict[str, Any] = (
        {"sentinels": parsed.hosts, "service_name": parsed.service_name}
        if parsed.scheme == SENTINEL_SCHEME
        else {"cluster": True}
    )
    derived["database"] = parsed.database
    for key, value in derived.items():
        if key in values and values[key] != value and key != "cluster":
            reader.error(f"redis.{key}", "is also set by redis.url: set it in only one place")
        values[key] = value


def _check_deployment(reader: Reader, values: dict[str, Any]) -> None:
    """Single server, Sentinel or Cluster: the keys that select one must agree."""
    sentinels, cluster = values.get("sentinels"), values.get("cluster", False)
    url = values.get("url")
    if sentinels and not values.get("service_name"):
        reader.error(
            "redis.service_name",
            "is required with redis.sentinels: the name the sentinels monitor, e.g. 'mymaster'",
        )
    bad_sentinels = any("redis.sentinels:" in p or "REDIS_SENTINELS:" in p for p in reader.problems)
    if values.get("service_name") and not sentinels and not bad_sentinels:
        reader.error("redis.service_name", "is set but redis.sentinels is not: set both")
    if sentinels and cluster:
        reader.error(
            "redis.cluster",
            "cannot be combined with redis.sentinels: a Redis Cluster fails over by itself",
        )
    if (sentinels or cluster) and url is not None and not is_multi_host_url(url):
        key = "redis.sentinels" if sentinels else "redis.cluster"
        reader.error(key, "cannot be combined with a redis://, unix:// or embedded redis.url")
    if cluster and values.get("database", 0) != 0:
        reader.error("redis.database", "must be 0 with redis.cluster (a Cluster has only db 0)")
    if values.get("wait_replicas", 0) and url == EMBEDDED:
        reader.error(
            "redis.wait_replicas",
            "must be 0 with the embedded server: it has no replicas to wait for",
        )


def _apply_redis_env(values: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Precedence: REDIS_URL > REDIS_HOST/REDIS_PORT > file; REDIS_PASSWORD always applies.

    Keeps the RedisConfig invariant that a password is in the URL or in `password`, not both.
    """
    if "url" in overrides:
        if url_has_password(overrides["url"]):
            values.pop("password", None)
        if "sentinels" not in overrides and "cluster" not in overrides:
            for key in ("sentinels", "service_name", "cluster"):  # the file's address
                values.pop(key, None)
    elif {"host", "port", "sentinels", "cluster"} & overrides.keys():
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
            check_queue_name(name)
        except ValueError as exc:
            reader.error(path, str(exc))
            valid_name = False
        values = reader.table(table, path, {**QUEUE_FIELDS, **QUEUE_ONLY_FIELDS})
        _check_serve(reader, path, values)
        queue = queue_from_pool(name, pool, values)
        if {"memory_limit", "memory_hard_limit"} & values.keys():
            _check_limits(reader, path, queue.memory_limit, queue.memory_hard_limit)
        if valid_name:
            queues[name] = queue
    return MappingProxyType(queues)


def _check_serve(reader: Reader, path: str, values: dict[str, Any]) -> None:
    """`weights` weigh the `serve` list, one weight per queue."""
    weights, serve = values.get("weights"), values.get("serve")
    if weights is None:
        return
    if serve is None:
        reader.error(f"{path}.weights", "needs `serve`: the queues the weights are for")
        values.pop("weights")
    elif len(weights) != len(serve):
        reader.error(
            f"{path}.weights",
            f"must give one weight per queue of serve ({len(serve)}), got {len(weights)}",
        )
        values.pop("weights")


def _check_limits(reader: Reader, path: str, soft: int | None, hard: int | None) -> None:
    """The hard limit kills a worker mid-job, so it must leave room above the soft limit."""
    if soft is not None and hard is not None and hard <= soft:
        reader.error(
            f"{path}.memory_hard_limit",
            f"must be above memory_limit ({format_size(soft)}), got {format_size(hard)}",
        )
