"""One worker's line to Redis: claims, begins and acks travel on one connection, in order.

A worker spends most of its time in round trips, so only a claim waits for its reply; the begin
and the acknowledgement of each job are written at once and their replies read with the next
claim, in the same round trip. Redis runs commands of one connection in order, so an ack always
lands before the claim that follows it. Every command kept for its reply is also kept for a
resend: after a dropped connection the session reconnects and sends them again, which is safe
because each is idempotent (an ack or a begin checks that the worker still holds the job).
A failure and a release wait for what was sent, then run on the driver's connection pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.connection import AbstractConnection

from jobpool import defaults
from jobpool.drivers.base import HOOK_STARTED, Delivery, Fetched, Outcome
from jobpool.drivers.redis import scripts as s
from jobpool.drivers.redis.parse import RETRY_CODES, ms, parse_fetch
from jobpool.drivers.redis.replies import ReplyLog
from jobpool.drivers.redis.waiter import Waiter

if TYPE_CHECKING:
    from jobpool.drivers.redis.driver import RedisDriver

log = logging.getLogger("jobpool.worker")
_NOSCRIPT = object()


@dataclass
class _Command:
    name: str
    keys: list[str]
    args: list[Any]
    on_reply: Callable[[Any], None] | None = None
    sent: bool = False
    resent: bool = False  # a resend's reply may describe the first send's effect: not checked


class RedisSession:
    """What one worker does on Redis; not shared between threads."""

    def __init__(self, driver: RedisDriver):
        self.driver = driver
        self._conn: AbstractConnection | None = None
        self._pending: list[_Command] = []  # sent (or to resend), reply not read yet
        self._refusals = ReplyLog(log)
        self._waiter: Waiter | None = None

    # -- the worker's steps --------------------------------------------------------------------

    def fetch(
        self,
        queue: str,
        worker_id: str,
        count: int = 1,
        lease: float = defaults.LEASE,
        held: Sequence[str] | None = None,
    ) -> Fetched:
        keys = s.fetch_keys(self.driver.keys(queue), worker_id)
        args = s.fetch_args(worker_id, count, ms(lease), self.driver.promote_batch, held)
        return parse_fetch(self._exchange(_Command("fetch", keys, args)), queue, worker_id)

    def begin(self, delivery: Delivery, confirm: bool = False) -> Delivery:
        """Begin a job claimed in a batch; returns it as running (its attempt counted), or, for
        a failed() hook delivery, with its hook marked started (a death now drops the hook).

        Without `confirm` the begin is only written (its reply is read with the next claim), so
        a batch of short jobs costs no round trip per job. With it, the reply is awaited: a job
        cancelled while it waited in the batch comes back `cancelled` (see lua/begin.lua)."""
        if delivery.record.get("status") == "processing" or delivery.hook_started:
            return delivery  # the claim began it
        ack = None if confirm or not self._pending else self._pending[-1]
        if ack is not None and ack.name == "ack" and not ack.sent and not ack.args[s.ACK_NEXT]:
            ack.args[s.ACK_NEXT] = delivery.id  # the previous job's ack begins this one
            self._write_now()
        else:
            keys = s.begin_keys(self.driver.keys(delivery.queue), delivery.worker_id)
            begin = _Command("begin", keys, s.begin_args(delivery.id, delivery.worker_id))
            if not confirm:
                self._send(begin, now=True)
            elif self._exchange(begin) == -1:
                return replace(delivery, record={**delivery.record, "status": "cancelled"})
        # Written now: the record says processing (or the hook started) while it runs.
        record = dict(delivery.record)
        if delivery.hook:
            record["hook"] = HOOK_STARTED
        else:
            record["status"], record["worker"] = "processing", delivery.worker_id
            record["attempts"] = delivery.attempts + 1
        return Delivery(delivery.id, delivery.queue, delivery.body, record, delivery.worker_id)

    def complete(self, delivery: Delivery, result: str = "") -> None:
        """Acknowledge a completed job, with its result as JSON ('' for none). It leaves with
        the next write (the next job's begin or the next claim, both right after this), and its
        reply is checked with the next claim."""
        keys = s.ack_keys(self.driver.keys(delivery.queue), delivery.worker_id)
        ttl, worker = self.driver.completed_ttl_ms, delivery.worker_id
        args = s.ack_args(ttl, "", worker, [delivery.id], results=[result])
        self._send(_Command("ack", keys, args, on_reply=lambda r: _warn_if_lost(r, delivery)))

    def retry_or_fail(
        self,
        delivery: Delivery,
        delay: float,
        error: str,
        traceback: str,
        force_fail: bool = False,
    ) -> Outcome:
        self.flush()
        d = self.driver
        keys = s.retry_or_fail_keys(d.keys(delivery.queue), delivery.worker_id)
        args = s.retry_or_fail_args(
            delivery.id, ms(delay), error, traceback, d.failed_ttl_ms, force_fail
        )
        return RETRY_CODES[d.scripts.run("retry_or_fail", keys, args)]

    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int:
        self.flush()
        keys = s.release_keys(self.driver.keys(queue), worker_id)
        return int(self.driver.scripts.run("release", keys, s.release_args(worker_id, job_ids)))

    def flush(self) -> None:
        """Wait until everything sent so far has been done by Redis."""
        if self._pending:
            self._exchange(None)

    def wait(
        self, queue: str, timeout: float, wakeup_fd: int | None = None, worker_id: str = ""
    ) -> None:
        """Block until the queue may have work. With `worker_id`, the job that ends the wait is
        moved into that worker's list at once, so a push wakes one idle worker, not all of
        them; its next fetch claims it (see fetch.lua)."""
        self.flush()
        if self._waiter is None:
            self._waiter = Waiter(self.driver.client)
        k = self.driver.keys(queue)
        self._waiter.wait(k.ready, timeout, wakeup_fd, k.wip(worker_id) if worker_id else None)

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.close()
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    # -- the wire ------------------------------------------------------------------------------

    def _send(self, command: _Command, now: bool = False) -> None:
        """Queue a command whose reply can wait; `now` writes it (and all queued) at once."""
        self._pending.append(command)
        if now:
            self._write_now()

    def _write_now(self) -> None:
        try:
            self._write_unsent(self._connection(), None)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._drop()  # the next exchange reconnects and resends

    def _exchange(self, final: _Command | None) -> Any:
        """Send what is unsent and `final` in one write, read every pending reply in order,
        and return `final`'s reply."""
        conn = self._connection()
        refused: redis.ResponseError | None = None
        try:
            self._write_unsent(conn, final)
            retry = []
            for command in list(self._pending):
                outcome = self._handle(command, conn)
                if isinstance(outcome, redis.ResponseError):
                    # Refused (a full or read-only Redis): keep it, in order, for the next write.
                    command.sent, command.resent = False, True
                    refused = refused or outcome
                    continue
                if outcome is _NOSCRIPT:
                    command.sent = False
                    retry.append(command)
                self._pending.remove(command)  # only once answered: else it is sent again
            reply = None if final is None else self._read(conn, final)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._drop()
            raise
        if retry:  # the server forgot our scripts (SCRIPT FLUSH): load them, run those again
            self._load_scripts(conn)
            self._pending.extend(retry)
            self._exchange(None)
        if refused is not None and final is None:
            raise refused  # a flush promises everything is done: it is not
        return reply

    def _write_unsent(self, conn: AbstractConnection, final: _Command | None) -> None:
        batch = [c for c in self._pending if not c.sent]
        if final is not None:
            batch.append(final)
        if not batch:
            return
        packed = conn.pack_commands([self._evalsha(c) for c in batch])
        for command in batch:
            command.sent = True
        conn.send_packed_command(packed)

    def _handle(self, command: _Command, conn: AbstractConnection) -> object:
        """Read one pending command's reply. An error reply is still exactly one reply, so the
        connection stays in step; the error is logged and returned, never silently dropped."""
        try:
            reply = conn.read_response()
        except redis.exceptions.NoScriptError:
            return _NOSCRIPT
        except redis.ResponseError as exc:
            self._refusals.report(exc, f"{command.name} (kept; sent again with the next write)")
            return exc
        if command.on_reply is not None and not command.resent:
            command.on_reply(reply)
        return reply

    def _read(self, conn: AbstractConnection, command: _Command) -> Any:
        try:
            return conn.read_response()
        except redis.exceptions.NoScriptError:
            self._load_scripts(conn)  # nothing was sent after it: run it again right here
            conn.send_packed_command(conn.pack_command(*self._evalsha(command)))
            return conn.read_response()

    def _evalsha(self, command: _Command) -> tuple[Any, ...]:
        sha = self.driver.scripts.sha(command.name)
        return ("EVALSHA", sha, len(command.keys), *command.keys, *command.args)

    def _connection(self) -> AbstractConnection:
        if self._conn is None:
            conn = cast(AbstractConnection, self.driver.client.connection_pool.make_connection())
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
        """Forget the connection; whatever was sent and not answered is sent again."""
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
        for command in self._pending:
            if command.sent:
                command.sent, command.resent = False, True


def _warn_if_lost(reply: Any, delivery: Delivery) -> None:
    fields = {"job_id": delivery.id, "queue": delivery.queue, "job_class": delivery.job_class}
    if reply and reply[0] == 0:
        log.warning(
            "completed, but its lease had lapsed: another worker owns the job now", extra=fields
        )
    elif reply and reply[0] == -1:
        log.info(
            "ran, though it was cancelled just before it began (its claim came first); "
            "its record stays cancelled",
            extra=fields,
        )
