"""What runs in a supervised worker process, from the fork on: its own process group, signals
reset, the job modules imported, a Worker serving its slot's queue, and the events that report
to the master (its board and pipe) and decide when the child leaves on its own."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from jobpool import exitcodes
from jobpool.config.units import format_size
from jobpool.job import import_job_modules
from jobpool.manager import QueueManager
from jobpool.process import die_with_parent, owned_memory, rss_self, same_file
from jobpool.supervisor import signals
from jobpool.supervisor.board import Board
from jobpool.supervisor.reports import Finished, Ready, TimedJobStarted
from jobpool.unserved import unserved_job_warnings, warns_here
from jobpool.worker.events import TitleEvents
from jobpool.worker.threaded import make_worker  # by the master: its pages shared by workers

if TYPE_CHECKING:
    from jobpool.config import Config, QueueConfig
    from jobpool.drivers.base import Delivery, Outcome
    from jobpool.job import Job
    from jobpool.supervisor.children import Slot

log = logging.getLogger("jobpool.supervisor")
STOP_CODES = {
    "memory": exitcodes.RECYCLE_MEMORY,
    "max_jobs": exitcodes.RECYCLE_MAX_JOBS,
    "timeout": exitcodes.RECYCLE_TIMEOUT,
    "cancel": exitcodes.RECYCLE_CANCEL,
}
FULL_MEMORY_CHECK = 1.0  # seconds between checks that include the child's own subprocesses
OUTCOMES_EVERY = 0.5  # most seconds a busy child holds the outcomes it has not reported yet
OUTCOMES_HELD = 200  # ... and most outcomes it holds


class ChildEvents(TitleEvents):
    """Inside the child: titles, reports to the master, and the reasons to leave on its own."""

    def __init__(
        self, slot: Slot, qcfg: QueueConfig, report_fd: int, board: Board, master_pid: int
    ):
        super().__init__(slot.name)
        self.report_fd = report_fd
        self._pipe = same_file(report_fd)
        self.board = board
        self.master_pid = master_pid
        self.memory_limit = qcfg.memory_limit
        self.queue_timeout = qcfg.timeout
        self.queue = qcfg.name
        # A little jitter (up to a tenth more), so that a pool started together is not
        # recycled all at once.
        jitter = random.randint(0, qcfg.max_jobs // 10)
        self.max_jobs = qcfg.max_jobs + jitter
        self.jobs = 0
        self._started: dict[int, float] = {}  # slot -> when its job started
        self._next_full_check = 0.0
        self._outcomes: list[bytes] = []  # encoded Finished reports not written yet
        self._outcomes_since = 0.0
        self.graceful_timeout = qcfg.graceful_timeout
        self._deadline_armed = False

    def ready(self) -> None:
        self._report(Ready().encode())

    def _report(self, lines: bytes) -> None:
        if not self._pipe():  # a job closed it, and the number may now be a Redis socket's
            return
        with contextlib.suppress(OSError):  # a master that stopped reading must not stall us
            os.write(self.report_fd, lines)

    def job_started(self, delivery: Delivery, job: Job, slot: int = 0) -> None:
        super().job_started(delivery, job, slot)
        now = time.monotonic()
        self._started[slot] = now
        timeout = float(getattr(job, "timeout", None) or self.queue_timeout or 0)
        self.board.started(now, timeout, delivery.job_class, delivery.id, slot)
        if timeout:
            self._report(TimedJobStarted().encode())  # the master arms it from the board

    def job_finished(self, delivery: Delivery, outcome: Outcome, slot: int = 0) -> None:
        super().job_finished(delivery, outcome, slot)
        self.board.finished(slot)
        now = time.monotonic()
        started = self._started.pop(slot, 0.0)
        took = now - started if started else 0.0
        with self.lock:
            self.jobs += 1
            # Outcomes only feed counters: a busy child sends them a batch at a time.
            if not self._outcomes:
                self._outcomes_since = now
            queue = "" if delivery.queue == self.queue else delivery.queue
            report = Finished(outcome.value, took, delivery.job_class, queue)
            self._outcomes.append(report.encode())
            held = len(self._outcomes) >= OUTCOMES_HELD
            if held or now - self._outcomes_since >= OUTCOMES_EVERY:
                self._send_outcomes()

    def idle(self) -> None:
        with self.lock:
            self._send_outcomes()

    def _send_outcomes(self) -> None:
        if self._outcomes:
            self._report(b"".join(self._outcomes))
            self._outcomes.clear()

    def stop_reason(self) -> str | None:
        if self.orphaned():
            return "orphaned"
        if self.max_jobs and self.jobs >= self.max_jobs:
            return "max_jobs"
        if self.memory_limit and self._over_memory_limit(self.memory_limit):
            return "memory"
        return None

    def orphaned(self) -> bool:
        """The master is gone. Then nobody enforces graceful_timeout but the child itself: a
        drain whose Redis is gone too would retry its last outcome for ever. So the child
        leaves once graceful_timeout has passed, as the master's kill would have made it leave:
        its jobs stay under its lease, for a peer's reap (or the next master) to hand back."""
        if os.getppid() == self.master_pid:
            return False
        if not self._deadline_armed:
            self._deadline_armed = True
            threading.Thread(
                target=self._leave_after_grace, name="jobpool: orphan's deadline", daemon=True
            ).start()
        return True

    def _leave_after_grace(self) -> None:  # pragma: no cover - ends the forked child
        time.sleep(self.graceful_timeout)
        log.warning(
            "worker %s: its master is gone and it did not finish within graceful_timeout "
            "(%gs); leaving, its jobs stay under its lease for a peer to hand back",
            self.name,
            self.graceful_timeout,
        )
        logging.shutdown()
        os._exit(exitcodes.OK)

    def _over_memory_limit(self, limit: int) -> bool:
        """USS (with subprocesses) above the limit. RSS bounds USS from above and costs one
        small read, so the exact figure is only computed when RSS is over, or once a second
        to catch memory held by the child's own subprocesses."""
        now = time.monotonic()
        if rss_self() <= limit and now < self._next_full_check:
            return False
        self._next_full_check = now + FULL_MEMORY_CHECK
        used = owned_memory(os.getpid())
        if used > limit:
            log.info(
                "worker %s uses %s, above memory_limit %s: leaving after this job",
                os.getpid(),
                format_size(used),
                format_size(limit),
            )
            return True
        return False


def lead_own_group() -> None:  # pragma: no cover - runs in the forked child
    """Make the worker the leader of a process group of its own, which the processes its jobs
    start join: the master's kill (a timeout, a hard memory limit) reaches them all. Ctrl-C in
    a terminal then reaches the master only, which drains the workers itself."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)


def child_main(
    cfg: Config,
    slot: Slot,
    worker_id: str,
    report_fd: int,
    board: Board,
    master_pid: int,
    preloaded: bool,
    close_fds: list[int],
) -> NoReturn:  # pragma: no cover - runs in the forked child
    code = exitcodes.ERROR
    try:
        signals.reset_in_child()
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        die_with_parent(15)  # SIGTERM: finish the job, take no new one, exit
        os.set_blocking(report_fd, False)
        code = _serve(cfg, slot, worker_id, report_fd, board, master_pid, preloaded)
    except BaseException:
        log.exception("worker %s crashed", slot.name)
    finally:
        logging.shutdown()
        os._exit(code)


def _serve(
    cfg: Config,
    slot: Slot,
    worker_id: str,
    report_fd: int,
    board: Board,
    master_pid: int,
    preloaded: bool,
) -> int:  # pragma: no cover - runs in the forked child
    qcfg = cfg.queue(slot.queue)
    events = ChildEvents(slot, qcfg, report_fd, board, master_pid)
    if not preloaded:
        try:
            import_job_modules(cfg.imports)
        except ImportError as exc:
            log.error("worker %s cannot start: %s", slot.name, exc)
            return exitcodes.IMPORT_FAILED
        if warns_here(cfg, slot.queue, slot.index):  # one worker speaks for all (no preload)
            for warning in unserved_job_warnings(cfg):
                log.warning("%s", warning)
    manager = QueueManager.from_config(cfg)
    limits = cfg.served_limits(qcfg)
    worker = make_worker(manager, qcfg, worker_id=worker_id, events=events, limits=limits)
    worker.install_signals(supervised=True)
    _check_orphaned_on_sigterm(events)
    signals.unblock()  # our handlers are in place: a SIGTERM held since the fork lands now
    events.ready()
    worker.run(install_signals=False, keep_lease=False)
    return STOP_CODES.get(worker.stopped_because or "", exitcodes.OK)


def _check_orphaned_on_sigterm(events: ChildEvents) -> None:  # pragma: no cover - in the child
    """The parent-death signal is SIGTERM: the master died. Starting the orphan's deadline then,
    not at the next job's end, also bounds a drain that never reaches one (see orphaned)."""
    drain: Callable[[int, Any], Any] = signal.getsignal(signal.SIGTERM)  # type: ignore[assignment]

    def on_sigterm(signum: int, frame: Any) -> None:
        events.orphaned()
        drain(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
