"""Redis URL basics shared by the config: the accepted schemes, and hiding a URL's password.

RedisConfig's repr() and safe_url() mask the URL so that passwords stay out of logs and status
output; the loader also uses the masking to tell whether a URL carries a password, and to drop it
when REDIS_PASSWORD replaces it. The validating converter lives with its siblings in
config_values.py and uses the same schemes.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

EMBEDDED = "embedded"
URL_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
# Several hosts in one URL: redis+sentinel://[user:pass@]host:port[,host:port]/service_name[/db]
# (the sentinels, the name they monitor, the database) and redis+cluster://host:port[,host:port]
# (a cluster's startup nodes). The user and password are those of the Redis servers, as in a
# redis:// URL; the sentinels' own are sentinel_username and sentinel_password.
MULTI_HOST_SCHEMES = (SENTINEL_SCHEME, CLUSTER_SCHEME)
DEFAULT_SENTINEL_PORT = 26379


def mask_url(url: str, replacement: str | None = "***") -> str:
    """Replace a Redis URL's password with `replacement`, or drop it when that is None.

    Returns the URL unchanged when it carries no password, and a placeholder when it cannot be
    parsed, so that a malformed URL never leaks a secret into a log line.
    """
    if url == EMBEDDED:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid Redis URL>"
    if parts.scheme.lower() not in URL_SCHEMES + MULTI_HOST_SCHEMES or "://" not in url:
        return "<invalid Redis URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if colon:
        userinfo = user if replacement is None else f"{user}:{replacement}"
    netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    query = _mask_query(parts.query, replacement)
    if not colon and query == parts.query:
        return url
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    rebuilt += f"?{query}" if query else ""
    return rebuilt + (f"#{parts.fragment}" if parts.fragment else "")


def _mask_query(query: str, replacement: str | None) -> str:
    """The same for a `?password=...` query parameter, which redis-py also accepts."""
    kept = []
    for item in filter(None, query.split("&")):
        key = item.partition("=")[0]
        if unquote(key).lower() == "password":
            if replacement is None:
                continue
            item = f"{key}={replacement}"
        kept.append(item)
    return "&".join(kept)


def url_has_password(url: str | None) -> bool:
    """True when `url` carries a password, in its user part or as a ?password= parameter."""
    return url is not None and mask_url(url, None) != url


@dataclass(frozen=True)
class MultiHostUrl:
    """A parsed redis+sentinel:// or redis+cluster:// URL."""

    scheme: str
    hosts: tuple[str, ...]  # "host:port", IPv6 hosts in brackets
    username: str | None = None
    password: str | None = None
    service_name: str | None = None  # redis+sentinel only
    database: int = 0


def is_multi_host_url(url: str | None) -> bool:
    """True for a redis+sentinel:// or redis+cluster:// URL."""
    return url is not None and url.partition("://")[0].lower() in MULTI_HOST_SCHEMES


def parse_multi_host_url(url: str) -> MultiHostUrl:
    """Split a redis+sentinel:// or redis+cluster:// URL; ValueError (never quoting the URL,
    which may hold a password) says what is wrong."""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in MULTI_HOST_SCHEMES:
        raise ValueError("must be a redis+sentinel:// or redis+cluster:// URL")
    rest, _, _ = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    default_port = DEFAULT_SENTINEL_PORT if scheme == SENTINEL_SCHEME else 6379
    hosts = tuple(parse_host_port(item, default_port) for item in hostlist.split(","))
    parts = [unquote(part) for part in path.split("/") if part]
    service_name: str | None = None
    if scheme == SENTINEL_SCHEME:
        if not parts:
            raise ValueError(
                "a redis+sentinel:// URL needs the service name after the hosts, e.g. "
                "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
            )
        service_name = parts.pop(0)
    if len(parts) > 1 or (parts and not parts[0].isdigit()):
        raise ValueError(f"the path of a {scheme}:// URL must end with a database number")
    database = int(parts[0]) if parts else 0
    if scheme == CLUSTER_SCHEME and database != 0:
        raise ValueError("a Redis Cluster has only database 0")
    return MultiHostUrl(
        scheme=scheme,
        hosts=hosts,
        username=unquote(user) if user else None,
        password=unquote(password) if colon else None,
        service_name=service_name,
        database=database,
    )


def parse_host_port(text: str, default_port: int | None = None) -> str:
    """Check "host:port" (IPv6 hosts in brackets; the port may be left out when there is a
    default) and return it with the port filled in; ValueError says what is wrong."""
    want = "'host:port' with a port from 1 to 65535, e.g. '10.0.0.1:26379'"
    text = text.strip()
    host, port = split_host_port(text) if text else ("", "")
    if not port and default_port is not None and host:
        port = str(default_port)
    valid_port = port.isdigit() and 1 <= int(port) <= 65535
    if not host or not valid_port or "[" in host or "]" in host or "," in host:
        raise ValueError(f"must be {want}, got {text!r}")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str) -> tuple[str, str]:
    """ "h:1" -> ("h", "1"), "[::1]:1" -> ("::1", "1"), "h" -> ("h", "")."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        return (host, rest[1:]) if bracket and (not rest or rest.startswith(":")) else ("", "")
    if text.count(":") > 1:
        return "", ""
    host, _, port = text.partition(":")
    return host, port


def address(text: str) -> tuple[str, int]:
    """A checked "host:port" as a (host, port) pair for a socket."""
    host, port = split_host_port(text)
    return host, int(port)
