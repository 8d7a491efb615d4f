"""Redis URLs in jobpool's config: which ones are accepted, and how to show one without its secret.

Kept together because both sides must agree on what a Redis URL looks like (its schemes, the word
'embedded'), and apart from the rest of the config because RedisConfig's repr and safe_url() use the
masking to keep passwords out of logs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from jobpool.config_values import require_string

EMBEDDED = "embedded"
URL_SCHEMES = ("redis", "rediss", "unix")
_URL_RULE = "must be 'embedded' or a redis://, rediss:// or unix:// URL"


def validate_redis_url(value: Any) -> str:
    """The config converter for redis.url / REDIS_URL: 'embedded' or a checked, stripped URL."""
    # The value is never echoed back: a mistyped URL may still contain a password.
    text = require_string(value, "'embedded' or a Redis URL")
    if text.strip().lower() == EMBEDDED:
        return EMBEDDED
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
    if parts.scheme.lower() not in URL_SCHEMES or "://" not in url:
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
