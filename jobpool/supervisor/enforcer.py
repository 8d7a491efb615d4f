"""The master's limits on its workers, each answered by a SIGKILL of the worker's process group:
a job past its `timeout`, a draining worker past `graceful_timeout`, a worker above
`memory_hard_limit`, and a running job that `qm.cancel()` asked to stop.

What the kill means for the worker's jobs (which count an attempt, which are cancelled) is
decided when the master reaps it: see restarts.describe_exit and the master's requeue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterable

from jobpool.config import Config
from jobpool.config.units import format_size
from jobpool.ids import queue_of
from jobpool.process import owned_memory
from jobpool.supervisor.board import Running
from jobpool.supervisor.cancels import CancelWatch
from jobpool.supervisor.children import Child
from jobpool.supervisor.restarts import Kill, KillReason

log = logging.getLogger("jobpool.supervisor")
# A threaded worker stops a job past its timeout itself (worker/threaded.py); the master kills
# it only as a backstop, this long after its graceful_timeout, should the worker hang.
THREADED_TIMEOUT_MARGIN = 5.0


class Enforcer:
    def __init__(self, cancels: CancelWatch):
        self.cancels = cancels
        self._next_memory_check = 0.0

    def enforce(self, config: Config, children: Iterable[Child], now: float) -> None:
        """Kill the workers past a job's timeout or, draining, past graceful_timeout; and
        every `memory_check_interval` those above their memory_hard_limit."""
        children = list(children)
        for child in children:
            if child.killed is not None:
                continue
            late = self._past_timeout(config, child, now)
            if late is not None:
                kill(child, KillReason.TIMEOUT, f"timeout after {late.timeout:g} s")
            elif child.draining_since is not None:
                grace = config.queue(child.slot.queue).graceful_timeout
                if now - child.draining_since > grace:
                    kill(child, KillReason.SHUTDOWN, "shutdown: still busy after graceful_timeout")
        if now >= self._next_memory_check:
            self._next_memory_check = now + config.pool.memory_check_interval
            for child in children:
                self._check_hard_limit(config, child)

    def stop_cancelled(self, children: Iterable[Child], now: float) -> None:
        """Kill the workers whose running job was cancelled (see cancels.py), as for a
        timeout. The board is read again before each kill: a job that ended meanwhile saves
        its worker. A threaded worker stops a cancelled job itself."""
        running: dict[str, list[str]] = {}
        watched = [c for c in children if c.killed is None and not c.threaded]
        for child in watched:
            for busy in child.running:
                queue = _queue_or_none(busy.job_id) if busy.settled else None
                if queue is not None:
                    running.setdefault(queue, []).append(busy.job_id)
        cancelled = self.cancels.cancelled(now, running)
        for child in watched if cancelled else []:
            for busy in child.running if child.killed is None else ():
                if busy.job_id in cancelled:
                    kill(child, KillReason.CANCEL, f"its job {busy.job_id} was cancelled")

    def deadlines(self, config: Config, children: Iterable[Child]) -> list[float]:
        """When the master must look again: each running job's timeout (and its threaded
        worker's margin), the next look for cancels, the next memory check."""
        due = []
        hard_limits = False
        for child in children:
            running = child.running
            grace = _timeout_grace(config, child)
            due += [job.started + job.timeout + grace for job in running if job.timeout]
            if running and child.killed is None and not child.threaded:
                due.append(self.cancels.next_check)
            hard_limits = hard_limits or bool(config.queue(child.slot.queue).memory_hard_limit)
        if hard_limits:
            due.append(self._next_memory_check)
        return due

    def _past_timeout(self, config: Config, child: Child, now: float) -> Running | None:
        grace = _timeout_grace(config, child)
        for job in child.running:
            if job.settled and job.timeout and now - job.started > job.timeout + grace:
                return job
        return None

    def _check_hard_limit(self, config: Config, child: Child) -> None:
        limit = config.queue(child.slot.queue).memory_hard_limit
        if not limit or child.killed is not None:
            return
        try:
            used = owned_memory(child.pid)
        except Exception:  # noqa: BLE001 - it may have just exited; the reaper will see
            return
        if used > limit:
            kill(
                child,
                KillReason.MEMORY,
                f"memory: worker used {format_size(used)}, above "
                f"memory_hard_limit {format_size(limit)}",
            )


def _queue_or_none(job_id: str) -> str | None:
    """The queue of a job id read from a worker's board, or None for what is no job id: an
    entry read in the middle of its write (the board's reader gives up waiting in the end),
    which must not stop the master."""
    try:
        return queue_of(job_id)
    except ValueError:
        return None


def _timeout_grace(config: Config, child: Child) -> float:
    """How long past a job's timeout the master waits before it kills the worker: not at all
    for a one-job worker; a threaded one stops such a job itself, so its kill is a backstop."""
    if not child.threaded:
        return 0.0
    return config.queue(child.slot.queue).graceful_timeout + THREADED_TIMEOUT_MARGIN


def kill(child: Child, reason: KillReason, detail: str) -> None:
    """SIGKILL the worker's process group: the worker and every process its job started
    (each worker leads its own group), so nothing it began outlives it unsupervised.
    `detail` is for the log and, if the kill loses a job, for the job's record."""
    child.killed = Kill(reason, detail)
    log.warning("killing worker %s (pid %d): %s", child.slot.name, child.pid, detail)
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        send(child.pid, signal.SIGKILL)  # not a group leader yet: just forked


def send(pid: int, sig: int) -> None:
    """Signal a process that may have exited already."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
