"""What each config value may be: the converters, and the schema saying which key uses which.

Each converter takes one raw TOML value (or environment variable) and returns the typed value, or
raises ValueError("must be ..., got ...") worded for the person editing the file; the reader
(config_reader.py) prefixes the file name and the key path. The wording lives here, next to the
check it explains, so that every key of the same kind fails the same way.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jobpool.config.redis_url import (
    DEFAULT_SENTINEL_PORT,
    EMBEDDED,
    URL_SCHEMES,
    is_multi_host_url,
    parse_host_port,
    parse_multi_host_url,
)
from jobpool.config.units import DURATION_FORMS, SIZE_FORMS, parse_duration, parse_size
from jobpool.limits import RateLimit, parse_rate
from jobpool.names import check_queue_name

Convert = Callable[[Any], Any]
_URL_RULE = (
    "must be 'embedded' or a redis://, rediss://, unix://, redis+sentinel:// or "
    "redis+cluster:// URL"
)


def describe(value: Any, secret: bool = False) -> str:
    """Name a TOML value's type (and, unless secret, the value) for "got ..." messages."""
    if isinstance(value, bool):
        kind, shown = "boolean", str(value).lower()
    elif isinstance(value, int):
        kind, shown = "integer", str(value)
    elif isinstance(value, float):
        kind, shown = "float", str(value)
    elif isinstance(value, str):
        kind, shown = "string", repr(value)
    elif isinstance(value, (list, tuple)):
        return "array"
    elif isinstance(value, Mapping):
        return "table"
    else:
        return type(value).__name__
    return kind if secret else f"{kind} {shown}"


def require_string(value: Any, want: str = "a string", secret: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be {want}, got {describe(value, secret)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def string(value: Any) -> str:
    return require_string(value)


def secret(value: Any) -> str:
    return require_string(value, secret=True)


def as_is(value: Any) -> Any:
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {describe(value)}")
    return value


def integer(minimum: int, maximum: int | None = None) -> Convert:
    want = (
        f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    )

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be {want}, got {describe(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"must be {want}, got {value}")
        return value

    return convert


def rate_limit(value: Any) -> RateLimit:
    return parse_rate(require_string(value, 'a rate such as "100/s"'))


def choice(*choices: str, aliases: Mapping[str, str] | None = None) -> Convert:
    want = "one of " + ", ".join(repr(choice) for choice in choices)

    def convert(value: Any) -> str:
        text = require_string(value, want).strip().lower()
        text = (aliases or {}).get(text, text)
        if text not in choices:
            raise ValueError(f"must be {want}, got {value!r}")
        return text

    return convert


def matching(pattern: re.Pattern[str], rule: str) -> Convert:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"{rule}; got {describe(value)}")
        return value

    return convert


def duration(at_least: float | None = None, none_allowed: bool = False) -> Convert:
    def convert(value: Any) -> float | None:
        if none_allowed and (value is False or str(value).strip().lower() == "none"):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"must be a duration > 0: {DURATION_FORMS}; got {describe(value)}")
        seconds = parse_duration(value)
        if at_least is not None and seconds < at_least:
            unit = "second" if at_least == 1 else "seconds"
            raise ValueError(f"must be at least {at_least:g} {unit}, got {value!r}")
        return seconds

    return convert


def size(none_allowed: bool = False) -> Convert:
    want = f"a size > 0: {SIZE_FORMS}"
    if none_allowed:
        want += ", or false, 'none' or 0 for no limit"

    def convert(value: Any) -> int | None:
        if value is True or not isinstance(value, (int, float, str)):
            raise ValueError(f"must be {want}; got {describe(value)}")
        try:
            size = parse_size(value)
        except ValueError:
            raise ValueError(f"must be {want}; got {value!r}") from None
        if size is None and not none_allowed:
            raise ValueError(f"must be {want}; got {describe(value)}")
        return size

    return convert


def imports(value: Any) -> tuple[str, ...]:
    want = "an array of dotted module names such as ['myapp.jobs']"
    if not isinstance(value, list):
        raise ValueError(f"must be {want}, got {describe(value)}")
    bad = [item for item in value if not _is_module_name(item)]
    if bad:
        listed = ", ".join(describe(item) for item in bad)
        raise ValueError(f"must be {want}; not module names: {listed}")
    return tuple(value)


def _is_module_name(name: Any) -> bool:
    return isinstance(name, str) and all(
        part.isidentifier() and not keyword.iskeyword(part) for part in name.split(".")
    )


def listen(value: Any) -> str:
    want = "'host:port' with a port from 1 to 65535, e.g. '127.0.0.1:9100'"
    text = require_string(value, want)
    host, colon, port = text.rpartition(":")
    bare_host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    valid_port = port.isdigit() and 1 <= int(port) <= 65535
    if not (colon and bare_host and valid_port) or ("[" in bare_host or "]" in bare_host):
        raise ValueError(f"must be {want}, got {value!r}")
    if ":" in bare_host and bare_host == host:
        raise ValueError(f"must be {want} (IPv6 hosts in brackets: '[::1]:9100'), got {value!r}")
    return text


def redis_url(value: Any) -> str:
    # The value is never echoed back: a mistyped URL may still contain a password.
    text = require_string(value, "'embedded' or a Redis URL")
    if text.strip().lower() == EMBEDDED:
        return EMBEDDED
    if is_multi_host_url(text):
        parse_multi_host_url(text)  # its messages never quote the URL
        return text.strip()
    try:
        parts = urlsplit(text.strip())
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(f"{_URL_RULE}, got a URL that cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES or "://" not in text:
        got = f"scheme {scheme!r}" if scheme and "://" in text else "a value without scheme://"
        raise ValueError(f"{_URL_RULE}, got {got}")
    if scheme == "unix" and not parts.path:
        raise ValueError("a unix:// URL needs a socket path, e.g. unix:///run/redis.sock")
    if scheme != "unix" and not parts.hostname:
        raise ValueError(f"a {scheme}:// URL needs a host, e.g. {scheme}://localhost:6379/0")
    return text.strip()


def host_ports(value: Any) -> tuple[str, ...]:
    """An array of "host:port" strings (or, as the environment gives it, one comma-separated
    string); a missing port is Sentinel's 26379."""
    want = "an array of 'host:port' strings such as ['10.0.0.1:26379', '10.0.0.2:26379']"
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be {want}, got {describe(value) if value != [] else 'none'}")
    checked = []
    for number, item in enumerate(value, 1):
        if not isinstance(item, str):
            raise ValueError(f"must be {want}; entry {number} is {describe(item)}")
        try:
            checked.append(parse_host_port(item, DEFAULT_SENTINEL_PORT))
        except ValueError as exc:
            raise ValueError(f"entry {number} {exc}") from None
    return tuple(checked)


def path_under(base_dir: Path) -> Convert:
    def convert(value: Any) -> Path:
        return base_dir / Path(require_string(value, "a directory path")).expanduser()

    return convert


# --------------------------------------------------------------------------------------------
# The schema: which keys each table accepts, how each is converted, and which environment
# variables override them.
# --------------------------------------------------------------------------------------------

# The key prefix starts every Redis key name: no '{' or '}' (Redis Cluster hash tags), no spaces.
# (The rule for queue names, which the manager and the CLI check too, is in jobpool/names.py.)
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_PREFIX_RULE = (
    "must be 1 to 64 characters: letters, digits, '_', '.', ':' or '-', starting with a letter or "
    "digit ('{', '}' and spaces are not allowed in Redis key prefixes)"
)

SECTIONS = ("redis", "jobs", "pool", "queues", "metrics", "dashboard", "schedules")
TOP_FIELDS: dict[str, Convert] = {
    "driver": choice("redis", "memory", aliases={"array": "memory"}),
    "default_queue": check_queue_name,
    "imports": imports,
    "log_level": choice("debug", "info", "warning", "error"),
    "log_format": choice("text", "json"),
    **{name: as_is for name in SECTIONS},
}
JOBS_FIELDS: dict[str, Convert] = {
    "completed_ttl": duration(),
    "failed_ttl": duration(),
    "max_payload": size(),
    "max_result": size(),
}
QUEUE_FIELDS: dict[str, Convert] = {
    "workers": integer(1),
    "memory_limit": size(none_allowed=True),
    "memory_hard_limit": size(none_allowed=True),
    "max_jobs": integer(0),
    "graceful_timeout": duration(),
    "lease": duration(at_least=1.0),
    "prefetch": integer(1, 1000),
    "concurrency": integer(1, 1000),
    "rate_limit": rate_limit,
    "max_running": integer(1),
    "timeout": duration(none_allowed=True),
}


def queue_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a non-empty list of queue names, got {describe(value)}")
    names = tuple(check_queue_name(item) for item in value)
    if len(set(names)) != len(names):
        raise ValueError(f"names a queue twice: {list(names)}")
    return names


def weight_list(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a non-empty list of integers >= 1, got {describe(value)}")
    return tuple(integer(1)(item) for item in value)


# Keys of a [queues.NAME] table only: the queues its workers serve, in priority order.
QUEUE_ONLY_FIELDS: dict[str, Convert] = {"serve": queue_list, "weights": weight_list}
POOL_FIELDS: dict[str, Convert] = {
    **QUEUE_FIELDS,
    "preload": boolean,
    "memory_check_interval": duration(),
    "restart_backoff_max": duration(),
}
METRICS_FIELDS: dict[str, Convert] = {"listen": listen}
DASHBOARD_FIELDS: dict[str, Convert] = {"listen": listen, "token": secret}
DASHBOARD_ENV = {"JOBPOOL_DASHBOARD_TOKEN": "token"}
REDIS_ALIASES = {"db": "database"}


def redis_fields(base_dir: Path) -> dict[str, Convert]:
    return {
        "url": redis_url,
        "host": string,
        "port": integer(1, 65535),
        "username": string,
        "password": secret,
        "database": integer(0),
        "prefix": matching(_PREFIX, _PREFIX_RULE),
        "data_dir": path_under(base_dir),
        "socket_timeout": duration(),
        "ssl_ca_certs": string,
        "ssl_certfile": string,
        "ssl_keyfile": string,
        "ssl_cert_reqs": choice("required", "optional", "none"),
        "sentinels": host_ports,
        "service_name": string,
        "sentinel_username": string,
        "sentinel_password": secret,
        "cluster": boolean,
        "wait_replicas": integer(0, 100),
        "wait_timeout": duration(),
    }


TOP_ENV = {"QUEUE_DRIVER": "driver", "QUEUE_DEFAULT": "default_queue"}
REDIS_ENV = {
    "REDIS_URL": "url",
    "REDIS_HOST": "host",
    "REDIS_PORT": "port",
    "REDIS_USERNAME": "username",
    "REDIS_PASSWORD": "password",
    "REDIS_DB": "database",
    "JOBPOOL_PREFIX": "prefix",
    "REDIS_SENTINELS": "sentinels",
    "REDIS_SERVICE_NAME": "service_name",
    "REDIS_SENTINEL_USERNAME": "sentinel_username",
    "REDIS_SENTINEL_PASSWORD": "sentinel_password",
    "REDIS_CLUSTER": "cluster",
    "REDIS_WAIT_REPLICAS": "wait_replicas",
}
INTEGER_KEYS = frozenset({"port", "database", "wait_replicas"})
BOOLEAN_KEYS = frozenset({"cluster"})
