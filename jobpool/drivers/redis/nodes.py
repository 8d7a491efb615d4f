"""Which Redis node a raw connection goes to: the one server, or on Redis Cluster the primary
that owns a queue's hash slot.

Most of the driver talks through the client, which routes each command itself (a RedisCluster
by the slot of its keys, following MOVED and ASK). A worker's session and its idle wait hold raw
connections instead (pipelined acks, a blocking BLMOVE), so they ask here for the pool of the
node that serves a queue, and come back after a redirect or a lost connection: a slot changes
owner when its primary fails over or is resharded, and the cluster answers MOVED (the owner
changed: the command was not run), ASK or TRYAGAIN (a migration in progress), or CLUSTERDOWN
(no one serves the slot yet). Each answer is the same: note that the map is stale, let the
caller keep what it had to do, and open the next connection on the owner the fresh map names.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.connection import AbstractConnection, ConnectionPool

from jobpool.drivers.redis.replies import is_cut_short

log = logging.getLogger("jobpool.redis")

# Replies that say the connection's node no longer serves the slot, or not yet.
SMALL_REPLIES = 4096  # reply buffer (bytes) of connections that read ids and counts only
REDIRECTS = (
    redis.exceptions.AskError,  # MovedError too: a subclass
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


def node_changed(exc: BaseException) -> bool:
    """True for a reply that says the connection's node is not the one to talk to any more: a
    redirect, READONLY (a primary demoted to a replica), or UNBLOCKED (a blocking command cut
    short as its node was demoted)."""
    if isinstance(exc, (*REDIRECTS, redis.exceptions.ReadOnlyError)):
        return True
    return is_cut_short(exc)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def node_client(client: redis.Redis, key: str) -> redis.Redis:
    """The client of the node that serves `key`: `client` itself, or on a Cluster the primary
    of the key's slot as the client's slot map has it (SlotNotCoveredError if none does)."""
    if not isinstance(client, RedisCluster):
        return client
    node = client.get_node_from_key(key)
    return cast(redis.Redis, client.get_redis_connection(node))


def node_pool(client: redis.Redis, key: str) -> ConnectionPool:
    """The connection pool of the node that serves `key` (see node_client)."""
    return node_client(client, key).connection_pool


def new_connection(pool: ConnectionPool, read_size: int | None = None) -> AbstractConnection:
    """A connection of `pool`'s kind and settings that the pool does not count: a session or
    a waiter holds it for its own life and closes it itself. (pool.make_connection() counts
    each one against max_connections and never forgets it, so a worker that reconnects a
    hundred times would be refused.)

    `read_size`: the bytes of its reply buffer, for a connection whose replies are small.
    redis-py gives each connection a 64 KiB buffer, which a worker with 32 job threads would
    otherwise hold 32 times (2 MiB) for replies of a few bytes."""
    kwargs = dict(pool.connection_kwargs)
    if read_size is not None:
        kwargs["socket_read_size"] = read_size
    return cast(AbstractConnection, pool.connection_class(**kwargs))


def node_name(client: redis.Redis, key: str) -> str:
    """host:port of the node that serves `key` ("" for a single server): a session keeps it to
    tell whether a key of another queue needs another connection."""
    if not isinstance(client, RedisCluster):
        return ""
    return str(client.get_node_from_key(key).name)


def refresh(client: redis.Redis, reason: BaseException | None = None) -> None:
    """Read the Cluster's slot map again (CLUSTER SLOTS of a node that answers); nothing on a
    single server. A MOVED reply names the new owner, which is enough to patch one slot."""
    if not isinstance(client, RedisCluster):
        return
    manager = client.nodes_manager
    if isinstance(reason, redis.exceptions.MovedError):
        manager.move_slot(reason)
        return
    try:
        manager.initialize()
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        # No node answered: the caller's next attempt tries again.
        log.warning("cannot read the Redis Cluster's slot map (%s); will retry", exc)


def primaries(client: redis.Redis) -> list[redis.Redis]:
    """A client per primary: `client` itself on a single server. What every node holds must be
    read on each (a SCAN of one node sees only its own slots)."""
    if not isinstance(client, RedisCluster):
        return [client]
    return [cast(redis.Redis, client.get_redis_connection(n)) for n in client.get_primaries()]
