"""One supervised worker process: how the master forks it, and what runs inside it.

The master side keeps a `Child` record per process. What job a child runs, and since when, is on
the child's `Board` (shared memory, no system call per job); its pipe carries the rest: that it is
ready, that a job with a timeout started (so the master wakes to arm it), and the outcomes and
durations of finished jobs, a batch at a time, for the metrics. Everything process-wide happens
in the child after the fork.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from jobpool import exitcodes, signals
from jobpool.board import Board, Running
from jobpool.events import TitleEvents
from jobpool.procinfo import die_with_parent, owned_memory, rss_self, same_file
from jobpool.sizes import format_size

if TYPE_CHECKING:
    from jobpool.config import Config, QueueConfig
    from jobpool.driver import Delivery, Outcome
    from jobpool.job import Job

log = logging.getLogger("jobpool.supervisor")
STOP_CODES = {"memory": exitcodes.RECYCLE_MEMORY, "max_jobs": exitcodes.RECYCLE_MAX_JOBS}
FULL_MEMORY_CHECK = 1.0  # seconds between checks that include the child's own subprocesses
OUTCOMES_EVERY = 0.5  # most seconds a busy child holds the outcomes it has not reported yet
OUTCOMES_HELD = 200  # ... and most outcomes it holds


@dataclass(frozen=True)
class Slot:
    """A place in the pool: the INDEXth worker of QUEUE, in the config generation GEN."""

    queue: str
    index: int
    generation: int = 0

    @property
    def name(self) -> str:
        return f"{self.queue}.{self.index}"


@dataclass
class Child:
    """The master's record of one worker process."""

    pid: int
    slot: Slot
    worker_id: str
    report_fd: int
    started: float
    board: Board
    ready: bool = False  # the child imported its jobs, connected, and takes work
    report_closed: bool = False  # end of file on its pipe: it exited, or a job closed it
    report_lost: bool = False  # ... and it lives on: said once in the log
    draining_since: float | None = None
    kill_reason: str | None = None
    count_attempt: bool = True
    outcomes: dict[str, int] = field(default_factory=dict)
    finished: list[tuple[str, str, float]] = field(default_factory=list)  # class, outcome, secs
    _partial: bytes = b""

    @property
    def busy(self) -> Running | None:
        """The job this child runs now, if any."""
        return self.board.read()

    @property
    def state(self) -> str:
        """starting, idle, busy or draining."""
        if self.draining_since is not None:
            return "draining"
        if not self.ready:
            return "starting"
        return "busy" if self.busy else "idle"

    def read_reports(self) -> bool:
        """Take in whatever the child wrote; False once the pipe is closed."""
        try:
            data = os.read(self.report_fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._apply(line.decode(errors="replace").split(" ", 3))
        return True

    def _apply(self, parts: list[str]) -> None:
        # "B" (a job with a timeout started) only wakes the master: the board says which.
        if parts[0] == "R":
            self.ready = True
        elif parts[0] == "I" and len(parts) == 4:
            self.outcomes[parts[1]] = self.outcomes.get(parts[1], 0) + 1
            self.finished.append((parts[3], parts[1], float(parts[2])))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.report_fd)
        self.board.close()


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
        # A little jitter (up to a tenth more), so that a pool started together is not
        # recycled all at once.
        jitter = random.randint(0, qcfg.max_jobs // 10)
        self.max_jobs = qcfg.max_jobs + jitter
        self.jobs = 0
        self._started = 0.0
        self._next_full_check = 0.0
        self._outcomes: list[str] = []  # "I" lines not written yet
        self._outcomes_since = 0.0

    def ready(self) -> None:
        self._report("R\n")

    def _report(self, line: str) -> None:
        if not self._pipe():  # a job closed it, and the number may now be a Redis socket's
            return
        with contextlib.suppress(OSError):  # a master that stopped reading must not stall us
            os.write(self.report_fd, line.encode())

    def job_started(self, delivery: Delivery, job: Job) -> None:
        super().job_started(delivery, job)
        self._started = now = time.monotonic()
        timeout = float(getattr(job, "timeout", None) or self.queue_timeout or 0)
        self.board.started(now, timeout, delivery.job_class, delivery.id)
        if timeout:
            self._report("B\n")  # wake the master: it arms the timeout from the board

    def job_finished(self, delivery: Delivery, outcome: Outcome) -> None:
        super().job_finished(delivery, outcome)
        self.board.finished()
        self.jobs += 1
        now = time.monotonic()
        took = now - self._started if self._started else 0.0
        self._started = 0.0
        # Outcomes only feed counters: a busy child sends them a batch at a time.
        if not self._outcomes:
            self._outcomes_since = now
        self._outcomes.append(f"I {outcome.value} {took:.6f} {delivery.job_class}\n")
        if len(self._outcomes) >= OUTCOMES_HELD or now - self._outcomes_since >= OUTCOMES_EVERY:
            self.idle()

    def idle(self) -> None:
        if self._outcomes:
            self._report("".join(self._outcomes))
            self._outcomes.clear()

    def stop_reason(self) -> str | None:
        if os.getppid() != self.master_pid:
            return "orphaned"
        if self.max_jobs and self.jobs >= self.max_jobs:
            return "max_jobs"
        if self.memory_limit and self._over_memory_limit(self.memory_limit):
            return "memory"
        return None

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


def spawn(
    cfg: Config,
    slot: Slot,
    worker_id: str,
    master_pid: int,
    preloaded: bool,
    close_fds: list[int],
    sigq: signals.SignalQueue,
    board: Board,
) -> tuple[int, int]:
    """Fork one worker that writes on `board`; returns (pid, read end of its report pipe)."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    with sigq.blocked():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; measured by the supervisor tests
            _lead_own_group()
            os.close(read_fd)
            _child_main(
                cfg,
                slot,
                worker_id,
                write_fd,
                board,
                master_pid,
                preloaded,
                [*close_fds, sigq.read_fd, sigq.write_fd],
            )
    os.close(write_fd)
    with contextlib.suppress(OSError):  # both sides set it, so no kill can come before it
        os.setpgid(pid, pid)
    return pid, read_fd


def _lead_own_group() -> None:  # pragma: no cover - runs in the forked child
    """Make the worker the leader of a process group of its own, which the processes its jobs
    start join: the master's kill (a timeout, a hard memory limit) reaches them all. Ctrl-C in
    a terminal then reaches the master only, which drains the workers itself."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)


def _child_main(
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
    from jobpool.job import import_job_modules
    from jobpool.manager import QueueManager
    from jobpool.unserved import unserved_job_warnings, warns_here
    from jobpool.worker import Worker

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
    worker = Worker(
        manager,
        slot.queue,
        worker_id=worker_id,
        lease=qcfg.lease,
        prefetch=qcfg.prefetch,
        events=events,
    )
    worker.install_signals(supervised=True)
    signals.unblock()  # our handlers are in place: a SIGTERM held since the fork lands now
    events.ready()
    worker.run(install_signals=False, keep_lease=False)
    return STOP_CODES.get(worker.stopped_because or "", exitcodes.OK)
