"""The master's signal queue: handlers do nothing but leave the signal number in a pipe.

Python's wakeup fd already writes each signal's number into the pipe from the C-level handler,
so the Python-level handlers are empty and the loop reads the numbers back in order. Nothing that
can deadlock (logging, waitpid, allocation-heavy work) ever runs inside a handler.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterator, Sequence

HANDLED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCHLD,
)


def _noop(signum: int, frame: object) -> None:
    """The wakeup fd carries the signal; nothing to do here."""


class SignalQueue:
    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        for fd in (self.read_fd, self.write_fd):
            os.set_blocking(fd, False)

    @property
    def fds(self) -> list[int]:
        """The pipe's two ends, which a forked child must close."""
        return [self.read_fd, self.write_fd]

    def install(self) -> None:
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for sig in HANDLED:
            signal.signal(sig, _noop)

    def wait(self, timeout: float, fds: Sequence[int] = ()) -> tuple[list[int], list[int]]:
        """Block until a signal arrives, one of `fds` is readable, or `timeout` passes.

        Returns (signals received, readable fds among `fds`).
        """
        try:
            readable, _, _ = select.select([self.read_fd, *fds], [], [], max(timeout, 0.0))
        except InterruptedError:  # pragma: no cover - PEP 475 retries select() itself
            readable = [self.read_fd]
        signals: list[int] = []
        if self.read_fd in readable:
            with contextlib.suppress(BlockingIOError):
                signals = list(os.read(self.read_fd, 4096))
        return signals, [fd for fd in readable if fd != self.read_fd]

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        """Hold every handled signal while forking: the child unblocks them once its own
        handlers are in place, so no signal is lost or handled by the master's code in the
        child."""
        old = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            yield  # a forked child never comes back here: it leaves through os._exit()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def reset_in_child() -> None:
    """In a freshly forked child: forget the master's wakeup fd and handlers."""
    signal.set_wakeup_fd(-1)
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_DFL)


def unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
