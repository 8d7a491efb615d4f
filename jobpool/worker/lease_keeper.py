"""Keeps a standalone worker's lease alive from a forked child process.

A thread would share the GIL with the job, and a job inside a long C call that holds the GIL
would starve it until the lease lapsed and a second worker took the job. A separate process
cannot be starved that way. Under `jobpool start` the supervisor renews leases instead.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from jobpool.process import die_with_parent, set_title


class LeaseKeeper:
    """Calls `renew()` every `interval` seconds from a child process while the parent lives."""

    def __init__(self, renew: Callable[[], None], interval: float, title: str = ""):
        self.renew = renew
        self.interval = interval
        self.title = title
        self.pid: int | None = None

    def start(self) -> int:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, measured through its effects
            try:
                self._child(parent)
            finally:
                os._exit(0)
        self.pid = pid
        return pid

    def _child(self, parent: int) -> None:
        # Signals to the process group (Ctrl-C, a drain's SIGTERM) are the parent's to handle:
        # the lease must outlive its drain. The parent ends us with SIGKILL, or we see it gone.
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        die_with_parent()
        if self.title:
            set_title(self.title)
        next_renewal = 0.0
        while os.getppid() == parent:
            if time.monotonic() >= next_renewal:
                try:
                    self.renew()
                    next_renewal = time.monotonic() + self.interval
                except Exception:  # noqa: BLE001 - Redis away: try again soon
                    next_renewal = time.monotonic() + min(self.interval, 1.0)
            time.sleep(min(0.5, self.interval))

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.pid = None
