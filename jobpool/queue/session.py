"""One worker's line to Redis: claims, starts and acks travel on one connection, in order.

A worker spends most of its time in round trips, so only a claim waits for its reply; the start
and the acknowledgement of each job are written at once and their replies read with the next
claim, in the same round trip. Redis runs commands of one connection in order, so an ack always
lands before the claim that follows it. Every command kept for its reply is also kept for a
resend: after a dropped connection the session reconnects and sends them again, which is safe
because each is idempotent (an ack or start checks that the worker still holds the job).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import redis
from redis.connection import AbstractConnection

from jobpool.driver import Delivery, Fetched, Outcome
from jobpool.queue import scripts as s
from jobpool.queue.waiter import Waiter

if TYPE_CHECKING:
    from jobpool.queue.driver import RedisDriver

log = logging.getLogger("jobpool.worker")
_RETRY_CODES = {-1: Outcome.LOST, 1: Outcome.RETRYING, 2: Outcome.FAILED}


@dataclass
class _Command:
    name: str
    keys: list[str]
    args: list[Any]
    on_reply: Callable[[Any], None] | None = None
    resent: bool = False  # a resend's reply may describe the first send's effect: not checked


class RedisSession:
    """What one worker does on Redis; not shared between threads."""

    def __init__(self, driver: RedisDriver):
        self.driver = driver
        self._conn: AbstractConnection | None = None
        self._pending: list[_Command] = []  # sent (or to resend), reply not read yet
        self._waiter: Waiter | None = None

    # -- the worker's steps --------------------------------------------------------------------

    def fetch(self, queue: str, worker_id: str, count: int = 1, lease: float = 30.0) -> Fetched:
        keys = s.fetch_keys(self.driver.keys(queue), worker_id)
        args = [worker_id, count, _ms(lease), self.driver.promote_batch]
        out = self._call(_Command("fetch", keys, args))
        deliveries = [
            Delivery(out[i].decode(), queue, out[i + 1], json.loads(out[i + 2]), worker_id)
            for i in range(2, len(out), 3)
        ]
        next_due = None if out[0] < 0 else out[0] / 1000.0
        return Fetched(deliveries, next_due, out[1].decode() or None)

    def start(self, delivery: Delivery) -> Delivery:
        """Begin a job claimed in a batch; returns it as running (its attempt counted)."""
        if delivery.record.get("status") in ("processing", "failed"):
            return delivery  # the claim started it, or it is a failed() hook delivery
        keys = s.start_keys(self.driver.keys(delivery.queue), delivery.worker_id)
        self._send(_Command("start", keys, [delivery.id, delivery.worker_id]))
        record = dict(
            delivery.record,
            status="processing",
            attempts=delivery.attempts + 1,
            worker=delivery.worker_id,
        )
        return replace(delivery, record=record)

    def complete(self, delivery: Delivery) -> None:
        """Acknowledge a completed job; its reply is checked with the next round trip."""
        keys = s.ack_keys(self.driver.keys(delivery.queue), delivery.worker_id)
        args = [self.driver.completed_ttl_ms, 10, delivery.id]
        self._send(_Command("ack", keys, args, on_reply=lambda r: _warn_if_lost(r, delivery)))

    def retry_or_fail(
        self,
        delivery: Delivery,
        delay: float,
        error: str,
        traceback: str,
        force_fail: bool = False,
    ) -> Outcome:
        keys = s.retry_or_fail_keys(self.driver.keys(delivery.queue), delivery.worker_id)
        args = [
            delivery.id,
            _ms(delay),
            error,
            traceback,
            self.driver.failed_ttl_ms,
            int(force_fail),
        ]
        return _RETRY_CODES[self._call(_Command("retry_or_fail", keys, args))]

    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int:
        keys = s.release_keys(self.driver.keys(queue), worker_id)
        return self._call(_Command("release", keys, [worker_id, *job_ids]))

    def flush(self) -> None:
        """Wait until everything sent so far has been done by Redis."""
        if self._pending:
            self._exchange(None)

    def wait(self, queue: str, timeout: float, wakeup_fd: int | None = None) -> None:
        self.flush()
        if self._waiter is None:
            self._waiter = Waiter(self.driver.client)
        self._waiter.wait(self.driver.keys(queue).ready, timeout, wakeup_fd)

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.close()
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    # -- the wire ------------------------------------------------------------------------------

    def _send(self, command: _Command) -> None:
        self._pending.append(command)
        conn = self._connection()
        try:
            self._write(conn, command)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._drop()  # the pending list is resent by the next exchange

    def _call(self, command: _Command) -> Any:
        return self._exchange(command)

    def _exchange(self, final: _Command | None) -> Any:
        """Read the replies of everything pending, then run `final` (if any) and return its
        reply. Pending commands are resent first when the connection is new."""
        fresh = self._conn is None
        conn = self._connection()
        try:
            if fresh:
                for command in self._pending:
                    command.resent = True
                    self._write(conn, command)
            if final is not None:
                self._write(conn, final)
            for command in list(self._pending):
                self._pending.remove(command)
                self._handle(command, conn)
            return None if final is None else self._read(conn, final)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._drop()
            raise

    def _handle(self, command: _Command, conn: AbstractConnection) -> None:
        """Read one pending command's reply. An error reply is still exactly one reply, so the
        connection stays in step; the error is logged, never silently dropped."""
        try:
            reply = self._read(conn, command)
        except redis.ResponseError as exc:
            log.error("redis refused %s: %s", command.name, exc)
            return
        if command.on_reply is not None and not command.resent:
            command.on_reply(reply)

    def _read(self, conn: AbstractConnection, command: _Command) -> Any:
        try:
            return conn.read_response()
        except redis.exceptions.NoScriptError:
            # The server forgot our scripts (SCRIPT FLUSH): load them, run this one again.
            self._load_scripts(conn)
            self._write(conn, command)
            return conn.read_response()

    def _write(self, conn: AbstractConnection, command: _Command) -> None:
        sha = self.driver.scripts.sha(command.name)
        conn.send_command("EVALSHA", sha, len(command.keys), *command.keys, *command.args)

    def _connection(self) -> AbstractConnection:
        if self._conn is None:
            conn = self.driver.client.connection_pool.make_connection()
            conn.connect()
            self._load_scripts(conn)
            self._conn = conn
        return self._conn

    def _load_scripts(self, conn: AbstractConnection) -> None:
        for name in s.OPERATIONS:
            conn.send_command("SCRIPT", "LOAD", s.source(name))
        for _ in s.OPERATIONS:
            conn.read_response()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


def _warn_if_lost(reply: Any, delivery: Delivery) -> None:
    if reply and reply[0] == 0:
        log.warning(
            "completed, but its lease had lapsed: another worker owns the job now",
            extra={"job_id": delivery.id, "queue": delivery.queue, "job_class": delivery.job_class},
        )


def _ms(seconds: float) -> int:
    from jobpool.queue.driver import _ms as ms

    return ms(seconds)
