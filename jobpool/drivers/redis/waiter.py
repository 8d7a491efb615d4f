"""Blocking until a queue may have work, with a precise timeout and an early wake-up.

An idle worker waits with ``BLMOVE ready WIP LEFT RIGHT``: Redis hands each pushed id to one
waiter only, into that worker's own list, where its next fetch claims it (or, if it never fetches,
its exit or death hands it back like any claim), so a push wakes one worker instead of all of
them. ``qm.pop()`` has no such list and peeks with ``BLMOVE ready ready LEFT LEFT``, which takes
nothing. Redis checks
blocking timeouts only about every 100 ms (its `hz`), too coarse for delayed jobs, so the timeout
is kept here with select(), which also watches the worker's wake-up fd (signals).
"""

from __future__ import annotations

import select
from typing import Any, cast

import redis
from redis.connection import AbstractConnection


class Waiter:
    """One dedicated connection, kept out of the shared pool because it sits blocked."""

    def __init__(self, client: redis.Redis):
        self._client = client
        self._conn: AbstractConnection | None = None
        self._conn_id: int | None = None

    def wait(
        self, key: str, timeout: float, wakeup_fd: int | None = None, into: str | None = None
    ) -> bool:
        """Wait until `key` holds an element, `timeout` seconds pass, or `wakeup_fd` is readable;
        the element is moved onto the end of the list `into`, if given.

        Returns True when an element came.
        """
        conn = self._connection()
        where = (into, "RIGHT") if into else (key, "LEFT")
        try:
            conn.send_command("BLMOVE", key, where[0], "LEFT", where[1], f"{timeout + 1:.3f}")
            sock = conn._sock  # noqa: SLF001 - select() needs the socket itself
            watch: list[Any] = [sock] if wakeup_fd is None else [sock, wakeup_fd]
            readable, _, _ = select.select(watch, [], [], max(timeout, 0.0))
            if sock not in readable and not self._unblock():
                self.close()
                return False
            return conn.read_response() is not None
        except BaseException:
            self.close()
            raise

    def _unblock(self) -> bool:
        """End our pending BLMOVE so the connection can be reused. False where the server
        denies CLIENT UNBLOCK (some hosted Redis do): the caller drops the connection."""
        try:
            self._client.execute_command("CLIENT", "UNBLOCK", self._conn_id)
        except redis.ResponseError:
            return False
        return True

    def _connection(self) -> AbstractConnection:
        if self._conn is None:
            conn = cast(AbstractConnection, self._client.connection_pool.make_connection())
            conn.connect()
            conn.send_command("CLIENT", "ID")
            self._conn_id = int(conn.read_response())
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
