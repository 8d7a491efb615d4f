"""Blocking until a queue may have work, with a precise timeout and an early wake-up.

An idle worker waits with ``BLMOVE ready WIP LEFT RIGHT``: Redis hands each pushed id to one
waiter only, into that worker's own list, where its next fetch claims it (or, if it never fetches,
its exit or death hands it back like any claim), so a push wakes one worker instead of all of
them. ``qm.pop()`` has no such list and peeks with ``BLMOVE ready ready LEFT LEFT``, which takes
nothing. Redis checks
blocking timeouts only about every 100 ms (its `hz`), too coarse for delayed jobs, so the timeout
is kept here with select(), which also watches the worker's wake-up fd (signals).

On Redis Cluster the wait goes to the primary that serves the queue's slot, and so does its
CLIENT UNBLOCK (a client id means something on its own node only). A redirect (the slot moved,
or no one serves it yet), or the node demoted to a replica under the wait (UNBLOCKED), ends the
wait early, as a wake-up does: the worker's next claim finds
the new owner (see nodes.py).
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

import redis
from redis.connection import AbstractConnection

from jobpool.drivers.redis.nodes import (
    SMALL_REPLIES,
    new_connection,
    node_changed,
    node_client,
    node_name,
    refresh,
)


class Waiter:
    """One dedicated connection, kept out of the shared pool because it sits blocked."""

    def __init__(self, client: redis.Redis):
        self._client = client
        self._conn: AbstractConnection | None = None
        self._conn_id: int | None = None
        self._node_client = client
        self._node = ""  # the Cluster node of _conn ("" on a single server)
        self._stale: BaseException | None = None  # why the slot map must be read again

    def wait(
        self, key: str, timeout: float, wakeup_fd: int | None = None, into: str | None = None
    ) -> bool:
        """Wait until `key` holds an element, `timeout` seconds pass, or `wakeup_fd` is readable;
        the element is moved onto the end of the list `into`, if given.

        Returns True when an element came.
        """
        return bool(wait_any([(self, key, into)], timeout, wakeup_fd))

    def _send(self, key: str, timeout: float, into: str | None) -> Any:
        """Send the blocking BLMOVE; returns the socket its answer comes on."""
        conn = self._connection(key)
        where = (into, "RIGHT") if into else (key, "LEFT")
        try:
            conn.send_command("BLMOVE", key, where[0], "LEFT", where[1], f"{timeout + 1:.3f}")
        except BaseException as exc:
            self.close(exc if isinstance(exc, (redis.ConnectionError, OSError)) else None)
            raise
        return conn._sock  # noqa: SLF001 - select() needs the socket itself

    def _finish(self, answered: bool) -> bool:
        """Read the BLMOVE's answer, after unblocking it if it has not answered; True when an
        element came."""
        conn = self._conn
        if conn is None:
            return False
        try:
            if not answered and not self._unblock():
                self.close()
                return False
            return conn.read_response() is not None
        except redis.ResponseError as exc:
            if not node_changed(exc):
                self.close()
                raise
            self.close(exc)  # the next wait reads the slot map again, as the next claim does
            return False
        except BaseException as exc:
            self.close(exc if isinstance(exc, (redis.ConnectionError, OSError)) else None)
            raise

    def _unblock(self) -> bool:
        """End our pending BLMOVE so the connection can be reused. False where the server
        denies CLIENT UNBLOCK (some hosted Redis do): the caller drops the connection."""
        try:
            self._node_client.execute_command("CLIENT", "UNBLOCK", self._conn_id)
        except redis.ResponseError:
            return False
        return True

    def _connection(self, key: str) -> AbstractConnection:
        """A connection to the node that serves `key`, reopened when that node changed."""
        if self._conn is not None and self._node != node_name(self._client, key):
            self.close()
        if self._conn is None:
            if self._stale is not None:
                refresh(self._client, self._stale)
                self._stale = None
            self._node_client = node_client(self._client, key)
            self._node = node_name(self._client, key)
            conn = new_connection(self._node_client.connection_pool, SMALL_REPLIES)
            try:
                conn.connect()
                conn.send_command("CLIENT", "ID")
                self._conn_id = int(conn.read_response())
            except BaseException as exc:
                conn.disconnect()
                self._stale = exc  # a node that fails: the map may not know yet it is gone
                raise
            self._conn = conn
        return self._conn

    def close(self, reason: BaseException | None = None) -> None:
        """Drop the connection; with a `reason` (lost, redirected), the next one reads the
        Cluster's slot map first."""
        if reason is not None:
            self._stale = reason
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


def wait_any(
    waits: Sequence[tuple[Waiter, str, str | None]], timeout: float, wakeup_fd: int | None = None
) -> list[int]:
    """Block on each (waiter, key, into) at once until one of the keys holds an element,
    `timeout` passes, or `wakeup_fd` is readable; then end the other waits. An element that
    reached a worker's list just as its wait was ended stays there: the worker's next claim
    hands it back first in line (see fetch.lua). Returns the indexes of the waits that an
    element came to (none: the timeout, or the wakeup)."""
    sockets = [waiter._send(key, timeout, into) for waiter, key, into in waits]
    watch: list[Any] = list(sockets) if wakeup_fd is None else [*sockets, wakeup_fd]
    readable, _, _ = select.select(watch, [], [], max(timeout, 0.0))
    came: list[int] = []
    error: BaseException | None = None
    for i, ((waiter, _, _), sock) in enumerate(zip(waits, sockets, strict=True)):
        try:
            if waiter._finish(sock in readable):
                came.append(i)
        except BaseException as exc:  # noqa: BLE001 - finish every wait, then raise the first
            error = error or exc
    if error is not None:
        raise error
    return came
