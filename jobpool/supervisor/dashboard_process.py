"""`[dashboard] listen`: the master keeps `jobpool dashboard` running as a child process.

A process, not a thread of the master: a web server's bugs, memory or CPU never reach the loop
that supervises the workers, and nothing of it is inherited by the workers the master forks.
It is started with `subprocess` (fork and exec: a fresh interpreter), reaped by the master's
own `waitpid(-1)` like every child, and started again after an exit with a backoff (1 s,
doubling to 60 s) so that a port someone else holds is retried without flooding the log. The
child exits by itself when the master is gone (it watches its parent; see dashboard/server.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys

from jobpool.backoff import Backoff

log = logging.getLogger("jobpool.supervisor")
STOP_GRACE = 3.0  # seconds the dashboard has to exit after SIGTERM before SIGKILL
STEADY = 30.0  # seconds of life after which an exit is no longer a crash loop


class DashboardProcess:
    """The dashboard child of one master, or nothing when `listen` is None."""

    def __init__(self, config_path: str, listen: str | None):
        self.config_path = config_path
        self.listen = listen
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.next_start = 0.0
        self.backoff = Backoff(first=1.0, cap=60.0)

    def start_if_due(self, now: float) -> None:
        """Start the child when it should run and does not (monotonic `now`)."""
        if self.listen is None or self.proc is not None or now < self.next_start:
            return
        command = [sys.executable, "-m", "jobpool.cli", "dashboard", "-c", self.config_path]
        command += ["--listen", self.listen, "--parent", str(os.getpid())]
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.next_start = now + self.backoff.next()
            log.error("cannot start the dashboard (%s); trying again later", exc)
            return
        self.started = now
        log.info("dashboard started: pid %d, http://%s/", self.proc.pid, self.listen)

    def next_deadline(self) -> float | None:
        """When a dead dashboard is due to start again, else None."""
        if self.listen is None or self.proc is not None:
            return None
        return self.next_start

    def reaped(self, pid: int, code: int, now: float) -> bool:
        """The master's reaper found `pid` exited: True if it was the dashboard."""
        if self.proc is None or pid != self.proc.pid:
            return False
        self.proc.returncode = code  # reaped already: Popen must not wait for it again
        self.proc = None
        if now - self.started > STEADY:
            self.backoff.reset()
        delay = self.backoff.next()
        self.next_start = now + delay
        log.warning("dashboard exited (code %d); starting it again in %.0fs", code, delay)
        return True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE; reaped here (the master's loop is over)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_GRACE)
        except ChildProcessError:  # the master's reaper got it first
            pass
