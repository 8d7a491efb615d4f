"""Redis URL basics shared by the config: the accepted schemes, and hiding a URL's password.

RedisConfig's repr() and safe_url() mask the URL so that passwords stay out of logs and status
output; the loader also uses the masking to tell whether a URL carries a password, and to drop it
when REDIS_PASSWORD replaces it. The validating converter lives with its siblings in
config_values.py and uses the same schemes.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

EMBEDDED = "embedded"
URL_SCHEMES = ("redis", "rediss", "unix")


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
