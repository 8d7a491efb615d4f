"""The master's side of its worker processes: a `Child` record per process, and the fork.

What job a child runs, and since when, is on the child's `Board` (shared memory, no system call
per job); its pipe carries the rest: that it is ready, that a job with a timeout started (so the
master wakes to arm it), and the outcomes and durations of finished jobs, a batch at a time, for
the metrics (the messages are in reports.py). What runs in the child after the fork is in
child_main.py.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobpool.supervisor import signals
from jobpool.supervisor.board import Board, Running
from jobpool.supervisor.child_main import child_main, lead_own_group
from jobpool.supervisor.fork_server import ForkServer
from jobpool.supervisor.reports import Finished, Ready, ReportReader
from jobpool.supervisor.restarts import Kill

if TYPE_CHECKING:
    from jobpool.config import Config


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
    report_closed: float | None = None  # when its pipe hit end of file (exit, or a job closed it)
    report_lost: bool = False  # ... and it lives on: said once in the log
    draining_since: float | None = None
    killed: Kill | None = None  # the master killed it, and why
    outcomes: dict[str, int] = field(default_factory=dict)
    finished: list[Finished] = field(default_factory=list)  # not counted in the metrics yet
    _reports: ReportReader = field(default_factory=ReportReader)

    @property
    def running(self) -> list[Running]:
        """The jobs this child runs now (at most its concurrency)."""
        return self.board.read_all()

    @property
    def busy(self) -> bool:
        return bool(self.running)

    @property
    def threaded(self) -> bool:
        """It runs many jobs at once, and enforces their timeouts and cancels itself."""
        return self.board.slots > 1

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
        # TimedJobStarted only wakes the master: the board says which job, and since when.
        for report in self._reports.feed(data):
            if isinstance(report, Ready):
                self.ready = True
            elif isinstance(report, Finished):
                self.outcomes[report.outcome] = self.outcomes.get(report.outcome, 0) + 1
                self.finished.append(report)
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.report_fd)
        self.board.close()


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
    # The master's objects go to the permanent generation before the fork: a collection in the
    # child then never writes to their pages, which stay shared instead of being copied into
    # each worker (the advice of the gc module's documentation for prefork servers).
    gc.freeze()
    with sigq.blocked():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; measured by the supervisor tests
            lead_own_group()
            os.close(read_fd)
            child_main(
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


def spawn_by(server: ForkServer, cfg: Config, slot: Slot, worker_id: str) -> tuple[int, int, Board]:
    """Have the fork server fork one worker; returns (pid, read end of its report pipe, its
    board). Raises ForkServerGone, with nothing left open, if it cannot."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    board, board_fd = Board.shareable(cfg.queue(slot.queue).concurrency)
    try:
        pid = server.spawn(cfg, slot, worker_id, write_fd, board_fd)
    except BaseException:
        os.close(read_fd)
        board.close()
        raise
    finally:
        os.close(write_fd)
        os.close(board_fd)
    return pid, read_fd, board
