"""The master's side of its worker processes: a `Child` record per process, and the fork.

What job a child runs, and since when, is on the child's `Board` (shared memory, no system call
per job); its pipe carries the rest: that it is ready, that a job with a timeout started (so the
master wakes to arm it), and the outcomes and durations of finished jobs, a batch at a time, for
the metrics. What runs in the child after the fork is in child_main.py.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobpool.supervisor import signals
from jobpool.supervisor.board import Board, Running
from jobpool.supervisor.child_main import child_main, lead_own_group

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
