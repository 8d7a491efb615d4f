"""What a Redis error reply means for jobpool, and logging each kind once.

A reply error is not a dropped connection: Redis answered, and refused. Production meets a few
kinds of them (a full server, a replica after a failover, a Cluster node that does not hold a
queue's slot, missing ACL permissions). None of them may end a worker or the master: they keep
what they could not do and try again with backoff. An operator needs to read what it means once,
not a line per attempt, so `ReplyLog` says it once per kind and then once a minute at most.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import redis

REPEAT_EVERY = 60.0  # seconds between reminders that a kind of refusal goes on

# Error codes Redis puts in front of a reply. Inside a script the code may come wrapped
# ("ERR Error running script ... -OOM command not allowed ..." on Redis 6), so the text is
# searched too, not only redis-py's exception class.
_CODES = re.compile(
    r"(?<![A-Z])-?(OOM|READONLY|MOVED|ASK|CLUSTERDOWN|CROSSSLOT|NOPERM|LOADING|MASTERDOWN|"
    r"TRYAGAIN|BUSY|NOREPLICAS|MISCONF|NOAUTH|WRONGPASS|UNBLOCKED)(?![A-Z])"
)
_CLASSES: tuple[tuple[type[Exception], str], ...] = (
    (redis.exceptions.OutOfMemoryError, "OOM"),
    (redis.exceptions.ReadOnlyError, "READONLY"),
    (redis.exceptions.MovedError, "MOVED"),  # before ASK: MovedError subclasses AskError
    (redis.exceptions.AskError, "ASK"),
    (redis.exceptions.MasterDownError, "MASTERDOWN"),  # before CLUSTERDOWN: a subclass
    (redis.exceptions.ClusterDownError, "CLUSTERDOWN"),
    (redis.exceptions.NoPermissionError, "NOPERM"),
    (redis.exceptions.BusyLoadingError, "LOADING"),
    (redis.exceptions.TryAgainError, "TRYAGAIN"),
)

MEANING = {
    "OOM": (
        "Redis is full: used memory reached maxmemory and the policy evicts nothing. Workers "
        "keep finishing the jobs they hold, which frees memory; new pushes are refused. Raise "
        "maxmemory, or find what fills it (`jobpool stats`, redis-cli --bigkeys)"
    ),
    "READONLY": (
        "the server is a read-only replica, as after a failover: point [redis] at the primary "
        "(or at Sentinel). Jobs are kept and retried meanwhile"
    ),
    "MOVED": (
        "the queue's hash slot is served by another Redis Cluster node. With [redis] cluster "
        "= true this follows a failover or a reshard: jobpool reads the slot map again and "
        "moves to the new owner. Without it, set cluster = true (or connect to that node)"
    ),
    "ASK": "a Redis Cluster slot is migrating; retrying",
    "CLUSTERDOWN": "the Redis Cluster is down or a slot is not served; retrying",
    "CROSSSLOT": "a command spanned hash slots on Redis Cluster; please report this as a bug",
    "NOPERM": (
        "the Redis user lacks a permission jobpool needs: see README, Security, for the ACL "
        "it needs"
    ),
    "LOADING": "Redis is loading its data set after a restart; retrying",
    "MASTERDOWN": "the replica lost its primary; retrying",
    "TRYAGAIN": "a Redis Cluster slot is being resharded; retrying",
    "BUSY": "a script or module is blocking Redis; retrying",
    "NOREPLICAS": "not enough replicas acknowledged the write (min-replicas-to-write); retrying",
    "MISCONF": (
        "Redis cannot persist to disk and refuses writes (stop-writes-on-bgsave-error): fix "
        "its disk or permissions"
    ),
    "NOAUTH": "Redis wants a password: set [redis] password or REDIS_PASSWORD",
    "WRONGPASS": "Redis refused the credentials: check [redis] username and password",
    "UNBLOCKED": (
        "Redis cut a blocking command short: the server was demoted to a replica (a "
        "failover), or an operator ran CLIENT UNBLOCK ... ERROR; reconnecting"
    ),
}
UNKNOWN = "an unexpected error reply; jobpool keeps retrying, please report it"


def reply_kind(exc: BaseException) -> str:
    """The error code of a Redis reply error (OOM, READONLY, MOVED, ...), or ERR."""
    for cls, code in _CLASSES:
        if isinstance(exc, cls):
            return code
    match = _CODES.search(str(exc))
    return match.group(1) if match else "ERR"


def is_full(exc: BaseException) -> bool:
    """True when Redis refused because it is full (maxmemory with noeviction)."""
    return isinstance(exc, redis.ResponseError) and reply_kind(exc) == "OOM"


def is_demoted(exc: BaseException) -> bool:
    """True for READONLY: the server is a replica now, as a primary is after a failover. The
    connection should be dropped: a new one finds the new primary (through Sentinel, or the
    address's DNS). Inside a script Redis wraps the code ("Error running script ...
    -READONLY ..."), which redis-py does not recognise as its ReadOnlyError."""
    return isinstance(exc, redis.ResponseError) and reply_kind(exc) == "READONLY"


def is_cut_short(exc: BaseException) -> bool:
    """True for UNBLOCKED: a blocking command (a BLMOVE, a WAIT for replicas) ended by the
    server, which Redis does to every blocked client as a primary is demoted to a replica,
    and then closes the connection. A write that WAIT was confirming may be lost with the
    demoted server, so the answer is the same as to a lost connection: reconnect, send again."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("UNBLOCKED")


def primary_moved(client: object, conn: object) -> bool:
    """True when `client` follows a primary through Sentinel, and the sentinels name another
    server than the one `conn` is connected to (it was cut off or demoted by a failover).
    False when it cannot tell: no Sentinel, or no sentinel answers."""
    from redis.sentinel import SentinelConnectionPool

    pool = getattr(client, "connection_pool", None)
    if not isinstance(pool, SentinelConnectionPool):
        return False
    try:
        host, port = pool.sentinel_manager.discover_master(pool.service_name)
    except redis.ConnectionError:
        return False
    return (getattr(conn, "host", None), getattr(conn, "port", None)) != (host, int(port))


def explain(exc: BaseException) -> str:
    kind = reply_kind(exc)
    return f"{kind}: {MEANING.get(kind, UNKNOWN)} (redis said: {exc})"


class ReplyLog:
    """Logs a refusal with its meaning the first time its kind is seen, and after that once per
    `REPEAT_EVERY` seconds with how many times it happened meanwhile."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic):
        self._log = logger
        self._clock = clock
        self._next: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def report(self, exc: BaseException, doing: str, level: int = logging.ERROR) -> None:
        kind, now = reply_kind(exc), self._clock()
        if now < self._next.get(kind, 0.0):
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        again = self._quiet.pop(kind, 0)
        more = f" ({again} more since the last report)" if again else ""
        self._log.log(level, "redis refused %s: %s%s", doing, explain(exc), more)
        self._next[kind] = now + REPEAT_EVERY


class Shortfalls:
    """Durable writes (`[redis] wait_replicas`) that fewer replicas confirmed in time, as a
    worker meets them: its acknowledgements and failures are done on the primary either way, so
    a shortfall is logged (once, then once per `REPEAT_EVERY` seconds with a count), not fatal.
    """

    def __init__(
        self,
        logger: logging.Logger,
        wanted: int,
        timeout_ms: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._log, self._wanted, self._timeout_ms, self._clock = logger, wanted, timeout_ms, clock
        self._next = 0.0
        self._quiet = 0

    def note(self, confirmed: int, what: str) -> None:
        now = self._clock()
        if now < self._next:
            self._quiet += 1
            return
        more = f" ({self._quiet} more since the last report)" if self._quiet else ""
        self._log.warning(
            "only %d of %d replica(s) confirmed %s within %d ms ([redis] wait_replicas): it is "
            "done on the primary, but a failover now could undo it and run the job again%s",
            confirmed,
            self._wanted,
            what,
            self._timeout_ms,
            more,
        )
        self._quiet, self._next = 0, now + REPEAT_EVERY
