"""One worker's line to Redis: claims, begins and acks travel on one connection, in order.

A worker spends most of its time in round trips, so only a claim waits for its reply; the begin
and the acknowledgement of each job are written at once and their replies read with the next
claim, in the same round trip. Redis runs commands of one connection in order, so an ack always
lands before the claim that follows it. Every command kept for its reply is also kept for a
resend: after a dropped connection the session reconnects and sends them again, which is safe
because each is idempotent (an ack or a begin checks that the worker still holds the job).
A failure and a release wait for what was sent, then run on the driver's connection pool.

On Redis Cluster the connection goes to the primary that serves the queue's hash slot (all of a
queue's keys share it, see keys.py). When that slot moves (a failover, a reshard) the node
answers MOVED, ASK, TRYAGAIN or CLUSTERDOWN instead of running the command: the session keeps
the command as a refused one, reads the slot map again, and reconnects to the owner it names
(see nodes.py). A command redirected was not run, so sending it to the new owner is safe.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import redis
from redis.connection import AbstractConnection

from jobpool import defaults
from jobpool.drivers.base import HOOK_STARTED, NOT_HELD, Delivery, Fetched, Outcome
from jobpool.drivers.redis import scripts as s
from jobpool.drivers.redis.nodes import (
    REDIRECTS,
    SMALL_REPLIES,
    is_cluster,
    new_connection,
    node_name,
    node_pool,
    refresh,
)
from jobpool.drivers.redis.parse import RETRY_CODES, ms, parse_fetch
from jobpool.drivers.redis.replies import (
    ReplyLog,
    Shortfalls,
    is_cut_short,
    is_demoted,
    primary_moved,
)
from jobpool.drivers.redis.waiter import Waiter, wait_any

if TYPE_CHECKING:
    from jobpool.drivers.redis.driver import RedisDriver
    from jobpool.limits import Limits

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
    wait: bool = False  # followed by WAIT (durable writes): its reply is read right after


class RedisSession:
    """What one worker does on Redis; not shared between threads."""

    def __init__(self, driver: RedisDriver, small_replies: bool = False):
        self.driver = driver
        # A job thread's session reads the replies of begins and acks only; claims bring job
        # bodies (many at once), for which redis-py's default buffer is kept.
        self._read_size = SMALL_REPLIES if small_replies else None
        self._conn: AbstractConnection | None = None
        self._pending: list[_Command] = []  # sent (or to resend), reply not read yet
        self._refusals = ReplyLog(log)
        self._waiters: list[Waiter] = []  # one per queue a worker waits on
        self._shortfalls = Shortfalls(log, driver.wait_replicas, driver.wait_timeout_ms)
        self._durable = driver.wait_replicas > 0
        self._unreplicated: list[_Command] = []  # answered, but WAIT fell short
        self._stale: BaseException | None = None  # why the slot map must be read again
        self._node = ""  # the Cluster node (host:port) of _conn; "" on a single server

    # -- the worker's steps --------------------------------------------------------------------

    def fetch(
        self,
        queue: str,
        worker_id: str,
        count: int = 1,
        lease: float = defaults.LEASE,
        held: Sequence[str] | None = None,
        limits: Limits | None = None,
    ) -> Fetched:
        keys = s.fetch_keys(self.driver.keys(queue), worker_id)
        args = s.fetch_args(worker_id, count, ms(lease), self.driver.promote_batch, held, limits)
        fetch = _Command("fetch", keys, args, wait=self._durable)
        return parse_fetch(self._exchange(fetch), queue, worker_id)

    def begin(self, delivery: Delivery, confirm: bool = False) -> Delivery:
        """Begin a job claimed in a batch; returns it as running (its attempt counted), or, for
        a failed() hook delivery, with its hook marked started (a death now drops the hook).

        Without `confirm` the begin is only written (its reply is read with the next claim), so
        a batch of short jobs costs no round trip per job. With it, the reply is awaited: a job
        cancelled while it waited in the batch comes back `cancelled` (see lua/begin.lua).
        Either way an acknowledgement still held back begins the job itself (lua/ack.lua)."""
        if delivery.record.get("status") == "processing" or delivery.hook_started:
            return delivery  # the claim began it
        # Durable writes: the previous job's ack (and its WAIT) is read before the next job
        # runs, so that a worker cut off from the replicas by a failover runs no more jobs
        # whose outcome would be lost with the old primary.
        confirm = confirm or self._durable
        ack = self._pending[-1] if self._pending else None
        if ack is not None and ack.name == "ack" and ack.args[s.ACK_NEXT] == delivery.id:
            # A retry: whether the first send of that ack began this job is not known (a lost
            # connection, a failover). Sent again it only acknowledges; a begin of its own says.
            ack.args[s.ACK_NEXT] = ""
        elif ack is not None and _begins(ack):
            ack.args[s.ACK_NEXT] = delivery.id  # the previous job's ack begins this one
            if not confirm:
                self._write_now()
                return _running(delivery)
            return _began(delivery, self._ack_and_begin(ack))
        keys = s.begin_keys(self.driver.keys(delivery.queue), delivery.worker_id)
        begin = _Command("begin", keys, s.begin_args(delivery.id, delivery.worker_id))
        if not confirm:
            self._send(begin, now=True)
            return _running(delivery)
        return _began(delivery, self._exchange(begin))

    def _ack_and_begin(self, ack: _Command) -> int:
        """Send an acknowledgement that begins the next job and read its reply: 1 if that job
        began, 0 if this worker does not hold it, -1 if it was cancelled."""
        answer: list[int] = []
        checks = ack.on_reply

        def on_reply(reply: Any) -> None:
            answer.append(int(reply[-1]))
            if checks is not None:
                checks(reply)

        ack.on_reply = on_reply
        self._exchange(None)
        # Not answered (a reply to a resend is not read): not known to be ours, so not run.
        return answer[0] if answer else 0

    def complete(self, delivery: Delivery, result: str = "") -> None:
        """Acknowledge a completed job, with its result as JSON ('' for none). It leaves with
        the next write (the next job's begin or the next claim, both right after this), and its
        reply is checked with the next claim."""
        keys = s.ack_keys(self.driver.keys(delivery.queue), delivery.worker_id)
        ttl, worker = self.driver.completed_ttl_ms, delivery.worker_id
        args = s.ack_args(ttl, "", worker, [delivery.id], results=[result])
        on_reply = lambda r: _warn_if_lost(r, delivery)  # noqa: E731
        self._send(_Command("ack", keys, args, on_reply, wait=self.driver.wait_replicas > 0))

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
        reply, confirmed = d.run_and_wait("retry_or_fail", keys, args)
        if confirmed < d.wait_replicas:
            self._shortfalls.note(confirmed, f"the failure of job {delivery.id}")
        return RETRY_CODES[reply]

    def release(self, worker_id: str, queue: str, job_ids: Sequence[str]) -> int:
        self.flush()
        keys = s.release_keys(self.driver.keys(queue), worker_id)
        args = s.release_args(worker_id, self.driver.failed_ttl_ms, job_ids)
        return int(self.driver.scripts.run("release", keys, args))

    def flush(self) -> None:
        """Wait until everything sent so far has been done by Redis."""
        if self._pending:
            self._exchange(None)

    def wait(
        self,
        queue: str | Sequence[str],
        timeout: float,
        wakeup_fd: int | None = None,
        worker_id: str = "",
    ) -> list[str]:
        """Block until the queue (or any of several) may have work. With `worker_id`, the job
        that ends the wait is moved into that worker's list at once, so a push wakes one idle
        worker, not all of them; its next fetch claims it (see fetch.lua). Several queues: a
        blocked BLMOVE on each, on a connection each (their slots may be on several Cluster
        nodes), the first answer ending them all. Returns the queues a job came to."""
        self.flush()
        queues = [queue] if isinstance(queue, str) else list(queue)
        while len(self._waiters) < len(queues):
            self._waiters.append(Waiter(self.driver.client))
        waits = []
        for q, waiter in zip(queues, self._waiters, strict=False):
            k = self.driver.keys(q)
            waits.append((waiter, k.ready, k.wip(worker_id) if worker_id else None))
        return [queues[i] for i in wait_any(waits, timeout, wakeup_fd)]

    def open(self, queue: str) -> None:
        with contextlib.suppress(redis.RedisError, OSError):  # the first step retries
            self._connection(self.driver.keys(queue).ready)

    def close(self) -> None:
        for waiter in self._waiters:
            waiter.close()
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    # -- the wire ------------------------------------------------------------------------------

    def _send(self, command: _Command, now: bool = False) -> None:
        """Queue a command whose reply can wait; `now` writes it (and all queued) at once."""
        if self._elsewhere(command):
            self.flush()
        self._pending.append(command)
        if now:
            self._write_now()

    def _write_now(self) -> None:
        try:
            self._write_unsent(self._connection(self._pending[-1].keys[0]), None)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._drop()  # the next exchange reconnects and resends

    def _exchange(self, final: _Command | None, redirected: bool = False) -> Any:
        """Send what is unsent and `final` in one write, read every pending reply in order,
        and return `final`'s reply. A `final` redirected to another Cluster node is sent
        there once at once (`redirected` marks that second try)."""
        if final is not None and self._elsewhere(final):
            self._exchange(None)  # what the other node was sent comes first
        if final is None and not self._pending:
            return None
        conn = self._connection((final or self._pending[0]).keys[0])
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
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._drop(exc)
            raise
        except (*REDIRECTS, redis.exceptions.ReadOnlyError) as exc:
            # `final` was not run: its slot is served elsewhere (or not yet), or the server
            # was demoted to a replica (a failover): reconnect and send it again there.
            self._drop(exc)
            if isinstance(exc, redis.exceptions.AskError) and not redirected:
                return self._exchange(final, redirected=True)
            raise
        if self._stale is not None:
            self._drop(self._stale)
        if retry:  # the server forgot our scripts (SCRIPT FLUSH): load them, run those again
            self._load_scripts(conn)
            self._pending.extend(retry)
            self._exchange(None)
        self._check_primary(conn)
        if refused is not None and final is None:
            raise refused  # a flush promises everything is done: it is not
        return reply

    def _check_primary(self, conn: AbstractConnection) -> None:
        """After a WAIT fell short (durable writes): is this server still the primary? Through
        Sentinel, ask; if another server is primary now, this one was cut off by a failover
        and what it was told is lost with it. Then drop the connection, keep the unreplicated
        writes to send again to the new primary, and raise ConnectionError, so the caller
        retries there (a claim is made anew; a begin tells whether the job is still ours)."""
        if not self._unreplicated or not primary_moved(self.driver.client, conn):
            self._unreplicated = []
            return
        self._resend_unreplicated()
        self._drop()
        raise redis.ConnectionError(
            "the server is no longer the primary (a failover): reconnecting to the new one"
        )

    def _resend_unreplicated(self) -> None:
        """Put the answered writes no replica confirmed back in front, to send again."""
        unreplicated, self._unreplicated = self._unreplicated, []
        for command in unreplicated:
            command.sent, command.resent = False, True
        self._pending[:0] = [c for c in unreplicated if c not in self._pending]

    def _read_wait(self, conn: AbstractConnection) -> int:
        """How many replicas a WAIT says confirmed the write before it. UNBLOCKED: the server
        was demoted to a replica under the WAIT (a failover) and closes the connection; that
        write, and any other no replica confirmed, may be lost with it. So it is a lost
        connection, not a refusal: they are sent again on the next one, to the new primary."""
        try:
            return int(conn.read_response())
        except redis.ResponseError as exc:
            if not is_cut_short(exc):
                raise
            self._resend_unreplicated()
            raise redis.ConnectionError(
                f"the server was demoted under a WAIT for replicas (a failover): {exc}"
            ) from exc

    def _write_unsent(self, conn: AbstractConnection, final: _Command | None) -> None:
        batch = [c for c in self._pending if not c.sent]
        if final is not None:
            batch.append(final)
        if not batch:
            return
        wait = ("WAIT", self.driver.wait_replicas, self.driver.wait_timeout_ms)
        commands = []
        for command in batch:  # a durable write's WAIT right behind it: no extra round trip
            commands += [self._evalsha(command), wait] if command.wait else [self._evalsha(command)]
        packed = conn.pack_commands(commands)
        for command in batch:
            command.sent = True
        conn.send_packed_command(packed)

    def _handle(self, command: _Command, conn: AbstractConnection) -> object:
        """Read one pending command's reply, and its WAIT's if it has one (durable writes: a
        shortfall is logged, not fatal, as the job is done either way)."""
        outcome = self._handle_reply(command, conn)
        if command.wait:
            try:
                confirmed = self._read_wait(conn)
            except redis.ResponseError as exc:
                # After a refused write (MOVED, READONLY: a node just demoted) its WAIT is
                # refused too, and says nothing more: the write is kept and sent again.
                if not isinstance(outcome, redis.ResponseError):
                    self._refusals.report(exc, "WAIT for replicas after an acknowledgement")
            else:
                if confirmed < self.driver.wait_replicas:
                    self._shortfalls.note(confirmed, f"an acknowledgement ({command.name})")
                    self._unreplicated.append(command)
        return outcome

    def _handle_reply(self, command: _Command, conn: AbstractConnection) -> object:
        """Read one pending command's reply. An error reply is still exactly one reply, so the
        connection stays in step; the error is logged and returned, never silently dropped."""
        try:
            reply = conn.read_response()
        except redis.exceptions.NoScriptError:
            return _NOSCRIPT
        except redis.ResponseError as exc:
            if isinstance(exc, REDIRECTS) or is_demoted(exc):
                # The slot moved, or the server was demoted to a replica (a failover):
                # reconnect after this read, to the slot's owner or the new primary.
                self._stale = exc
            # On a Cluster a redirect is routine (a failover, a reshard), and followed at once.
            moved = isinstance(exc, REDIRECTS) and is_cluster(self.driver.client)
            doing = f"{command.name} (kept; sent again with the next write)"
            self._refusals.report(exc, doing, logging.WARNING if moved else logging.ERROR)
            return exc
        if command.on_reply is not None and not command.resent:
            command.on_reply(reply)
        return reply

    def _read(self, conn: AbstractConnection, command: _Command) -> Any:
        reply = self._read_reply(conn, command)
        if command.wait and self._read_wait(conn) < self.driver.wait_replicas:
            self._unreplicated.append(command)  # a claim: made anew if the primary moved
        return reply

    def _read_reply(self, conn: AbstractConnection, command: _Command) -> Any:
        try:
            return conn.read_response()
        except redis.exceptions.NoScriptError:
            self._load_scripts(conn)  # nothing was sent after it: run it again right here
            conn.send_packed_command(conn.pack_command(*self._evalsha(command)))
            return conn.read_response()
        except redis.ResponseError as exc:
            if is_demoted(exc) and not isinstance(exc, redis.exceptions.ReadOnlyError):
                # READONLY from inside a script comes wrapped: name it for _exchange.
                raise redis.exceptions.ReadOnlyError(str(exc)) from exc
            raise

    def _evalsha(self, command: _Command) -> tuple[Any, ...]:
        sha = self.driver.scripts.sha(command.name)
        return ("EVALSHA", sha, len(command.keys), *command.keys, *command.args)

    def _connection(self, key: str) -> AbstractConnection:
        """The connection to the node that serves `key`: the one server, or on Redis Cluster
        the primary of the key's slot, as a slot map read again after a redirect or a lost
        connection names it."""
        client = self.driver.client
        if self._conn is not None and self._node != node_name(client, key):
            self._drop()  # only with nothing pending (see _elsewhere): nothing to resend
        if self._conn is None:
            if self._stale is not None:
                refresh(client, self._stale)
                self._stale = None
            node = node_name(client, key)
            conn = new_connection(node_pool(client, key), self._read_size)
            try:
                conn.connect()
                self._load_scripts(conn)
            except BaseException as exc:
                conn.disconnect()
                self._stale = exc  # a node that fails: the map may not know yet it is gone
                raise
            self._conn, self._node = conn, node
        return self._conn

    def _elsewhere(self, command: _Command) -> bool:
        """True when `command` goes to another Cluster node than what is pending: the pending
        commands are finished first, since replies come back in order per connection only."""
        if not self._pending or not command.keys:
            return False
        client = self.driver.client
        return node_name(client, command.keys[0]) != node_name(client, self._pending[0].keys[0])

    def _load_scripts(self, conn: AbstractConnection) -> None:
        # Every script's text on each new connection: a SCRIPT EXISTS first, to send only the
        # missing ones, made workers slow to come back after a primary was killed (Sentinel).
        for name in s.OPERATIONS:
            conn.send_command("SCRIPT", "LOAD", s.source(name))
        for _ in s.OPERATIONS:
            conn.read_response()

    def _drop(self, reason: BaseException | None = None) -> None:
        """Forget the connection; whatever was sent and not answered is sent again. With a
        `reason` (a lost connection, a redirect), the next connection reads the Cluster's slot
        map first: the node may be gone, or no longer serve the queue."""
        if reason is not None:
            self._stale = reason
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
        for command in self._pending:
            if command.sent:
                command.sent, command.resent = False, True


def _begins(ack: _Command) -> bool:
    """Whether `ack` can also begin the next job: it begins none yet, and was never written
    (a resend's effect on its first send is not known)."""
    return ack.name == "ack" and not ack.args[s.ACK_NEXT] and not ack.sent and not ack.resent


def _began(delivery: Delivery, began: int) -> Delivery:
    """`delivery` as a confirmed begin left it: running (1), or marked cancelled (-1) or no
    longer this worker's (0: after a failover, or its lease lapsed)."""
    if began in (-1, 0):
        status = "cancelled" if began == -1 else NOT_HELD
        return replace(delivery, record={**delivery.record, "status": status})
    return _running(delivery)


def _running(delivery: Delivery) -> Delivery:
    """`delivery` as it runs: the record says processing (or, for a failed() hook, the hook
    started), its attempt counted."""
    record = dict(delivery.record)
    if delivery.hook:
        record["hook"] = HOOK_STARTED
    else:
        record["status"], record["worker"] = "processing", delivery.worker_id
        record["attempts"] = delivery.attempts + 1
    return Delivery(delivery.id, delivery.queue, delivery.body, record, delivery.worker_id)


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
