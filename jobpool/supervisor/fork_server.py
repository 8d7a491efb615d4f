"""The fork server: a still copy of the master, made at its first worker's fork, that forks
every worker.

Why not fork the workers from the master itself:
- Memory. After a fork, each page that either process writes becomes a copy of its own. The
  master goes on working after each fork (Redis, logging, the registry, metrics), and every
  page it touches was until then shared with the workers: the master gets a copy, and the
  worker's original is then counted against the worker alone. The fork server only waits and
  forks, so the pages the workers share with it stay shared. (In workload G, one worker with
  32 threads, this is 1.5 MB of the 24 MB the pool used: see docs/concurrency.md.)
- Threads. A process with threads should not fork: a lock that another thread held at the
  fork is held in the child forever. The master may run a thread (the metrics server) by the
  time it forks the fork server, but only that once; the fork server never has one.

The workers are still the master's children, so that everything else stays as it was: the
master waits for them, signals them and reads their exit statuses. It is a child subreaper; the
fork server forks a short-lived process that forks the worker and exits at once, and the kernel
hands the orphaned worker to the master. Each request carries the worker's settings (pickled)
and two descriptors: the write end of its report pipe and its board's memory (a memfd).

When the fork server cannot start or is gone, the master forks the workers itself.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import io
import logging
import os
import pickle
import signal
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, NoReturn

from jobpool.process import become_subreaper, die_with_parent, set_title
from jobpool.supervisor import signals
from jobpool.supervisor.board import Board
from jobpool.supervisor.child_main import child_main, lead_own_group

if TYPE_CHECKING:
    from jobpool.config import Config
    from jobpool.supervisor.children import Slot

log = logging.getLogger("jobpool.supervisor")
TITLE = "jobpool: fork server"
# Seconds the master waits for a worker's pid: a fork takes milliseconds, and the master's loop
# (signals, lease renewals) waits meanwhile. Past it, the master forks workers itself.
REPLY_TIMEOUT = 3.0
_PID = struct.Struct("<q")
_MESSAGE_MAX = 1 << 22  # a request (the config, pickled) is far smaller
# Signals the fork server ignores: a Ctrl-C or a hangup to the master's process group, or the
# SIGTERM that systemd sends every process of the service, are the master's to act on. The fork
# server leaves when the master closes its socket, or dies (SIGKILL, see _serve).
_IGNORED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


class ForkServerGone(Exception):
    """The fork server did not answer; the master forks workers itself from now on."""


@dataclass(frozen=True)
class WorkerRequest:
    """One worker to fork, besides the two descriptors sent along; `config` only when it is
    not the one the fork server has (a reload), as unpickling writes to the server's pages."""

    slot: Slot
    worker_id: str
    slots: int  # the board's entries (the queue's concurrency)
    config: Config | None = None


@dataclass
class _Settings:
    """What the fork server knows from its fork on, and the config it was last sent."""

    config: Config
    master_pid: int
    preloaded: bool


def _read_only(table: dict[str, object]) -> MappingProxyType[str, object]:
    return MappingProxyType(table)


class _Pickler(pickle.Pickler):
    # The config's tables are read-only views (MappingProxyType), which pickle cannot take
    # as they are: they travel as dicts and are made read-only views again.
    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[MappingProxyType] = lambda m: (_read_only, (dict(m),))


def _dumps(request: WorkerRequest) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(request)
    return out.getvalue()


class ForkServer:
    """The master's handle on its fork server, started on the first fork it is asked for (as
    late as possible: what the master sets up before it is then shared with the workers)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._sock: socket.socket | None = None
        self._tried = False
        self._config: Config | None = None  # the config the fork server has

    @property
    def running(self) -> bool:
        return self._sock is not None

    def ready(
        self, config: Config, master_pid: int, preloaded: bool, close_fds: Sequence[int]
    ) -> bool:
        """True if the fork server runs, forking it first if it was never tried (`close_fds`:
        the master's descriptors it must not keep). False where it cannot work (no memfd, or
        no child subreaper), or once it is gone: then the master forks workers itself."""
        if not self._tried:
            self._tried = True
            if hasattr(os, "memfd_create") and become_subreaper():
                self._start(_Settings(config, master_pid, preloaded), close_fds)
        return self.running

    def _start(self, settings: _Settings, close_fds: Sequence[int]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        gc.freeze()  # as before a worker's fork: a collection in the child writes no old page
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the fork server; measured by the supervisor tests
            ours.close()
            _serve(theirs, settings, [*close_fds])
        theirs.close()
        ours.settimeout(REPLY_TIMEOUT)
        self.pid, self._sock, self._config = pid, ours, settings.config
        log.info("fork server started: pid %d", pid)

    def spawn(
        self, config: Config, slot: Slot, worker_id: str, report_fd: int, board_fd: int
    ) -> int:
        """Have a worker forked; its pid (already the master's child, or about to be)."""
        if self._sock is None:
            raise ForkServerGone("not running")
        sent = None if config is self._config else config
        request = WorkerRequest(slot, worker_id, config.queue(slot.queue).concurrency, sent)
        try:
            message = _dumps(request)
        except Exception as exc:  # noqa: BLE001 - a config that cannot travel: fork here
            self.lost(f"cannot send the config: {type(exc).__name__}: {exc}")
            raise ForkServerGone(str(exc)) from exc
        # The worker waits for a byte on `go` before it does anything: a worker whose pid the
        # master never learns (the fork server died before it answered) reads end of file
        # instead, and leaves at once rather than run untracked.
        go_read, go = os.pipe()
        try:
            try:
                socket.send_fds(self._sock, [message], [report_fd, board_fd, go_read])
                reply = self._sock.recv(_PID.size)
            except OSError as exc:  # a timeout too
                self.lost(f"{type(exc).__name__}: {exc}")
                raise ForkServerGone(str(exc)) from exc
            finally:
                os.close(go_read)
            if len(reply) != _PID.size:
                self.lost("it closed its end")
                raise ForkServerGone("no reply")
            self._config = config
            (pid,) = _PID.unpack(reply)
            if pid <= 0:
                raise ForkServerGone("it could not fork")  # logged there; it lives on
            os.write(go, b"!")
            return int(pid)
        finally:
            os.close(go)

    def lost(self, why: str) -> None:
        """Stop using the fork server (dead or not answering): kill it if it is there (the
        master's reaper collects it)."""
        if self._sock is None:
            return
        log.warning(
            "fork server (pid %s) lost (%s): the master forks workers itself", self.pid, why
        )
        self._sock.close()
        self._sock = None
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def reaped(self, pid: int, code: int) -> bool:
        """The master's reaper found `pid` exited: True if it was the fork server."""
        if pid != self.pid:
            return False
        if self._sock is not None:
            log.warning("fork server (pid %d) exited (code %d): the master forks workers itself",
                        pid, code)  # fmt: skip
            self._sock.close()
            self._sock = None
        self.pid = None
        return True

    def stop(self, patience: float = 2.0) -> None:
        """At the master's exit: close the socket, which ends the fork server, and wait for
        it (killed if it takes longer than `patience` seconds)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        pid, self.pid = self.pid, None
        if pid is None:
            return
        deadline = time.monotonic() + patience
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(pid, os.WNOHANG)[0] == 0:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return
                time.sleep(0.01)


# -- inside the fork server ------------------------------------------------------------------


def _serve(
    sock: socket.socket, settings: _Settings, close_fds: list[int]
) -> NoReturn:  # pragma: no cover
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        for sig in signals.HANDLED:
            signal.signal(sig, signal.SIG_IGN if sig in _IGNORED else signal.SIG_DFL)
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        die_with_parent(signal.SIGKILL)
        set_title(TITLE)
        while os.getppid() == settings.master_pid:
            try:
                message, fds, _, _ = socket.recv_fds(sock, _MESSAGE_MAX, 3)
            except InterruptedError:
                continue
            if not message:
                break  # the master closed its end: it is stopping
            pid = -1
            try:
                request: WorkerRequest = pickle.loads(message)
                settings.config = request.config or settings.config
                pid = _fork_worker(request, settings, fds, sock)
            except Exception:  # noqa: BLE001 - report the failure, serve on
                log.exception("fork server: cannot fork a worker")
            finally:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            sock.sendall(_PID.pack(pid))
    except BaseException:  # noqa: BLE001 - whatever it is, leave quietly
        code = 1
    finally:
        os._exit(code)


def _fork_worker(
    request: WorkerRequest, settings: _Settings, fds: list[int], sock: socket.socket
) -> int:  # pragma: no cover
    """Fork a process that forks the worker and exits: the worker's pid, or -1."""
    report_fd, board_fd, go = fds
    read_pid, write_pid = os.pipe()
    gc.freeze()
    # Signals held across the forks, as when the master forks a worker: the worker unblocks
    # them once its own handlers are in place.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signals.HANDLED)
    try:
        middle = os.fork()
        if middle == 0:
            try:
                os.close(read_pid)
                pid = os.fork()
                if pid == 0:
                    os.close(write_pid)
                    _worker(request, settings, report_fd, board_fd, go, sock)
                with contextlib.suppress(OSError):  # both sides set it, as in spawn()
                    os.setpgid(pid, pid)
                os.write(write_pid, _PID.pack(pid))
            finally:
                os._exit(0)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    os.close(write_pid)
    try:
        data = os.read(read_pid, _PID.size)
    finally:
        os.close(read_pid)
        os.waitpid(middle, 0)
    return _PID.unpack(data)[0] if len(data) == _PID.size else -1


def _worker(
    request: WorkerRequest,
    settings: _Settings,
    report_fd: int,
    board_fd: int,
    go: int,
    sock: socket.socket,
) -> NoReturn:  # pragma: no cover
    lead_own_group()
    if os.read(go, 1) != b"!":  # the master never learned our pid (see ForkServer.spawn)
        os._exit(0)
    os.close(go)
    board = Board(request.slots, board_fd)
    os.close(board_fd)
    _await_adoption(settings.master_pid)
    child_main(
        settings.config,
        request.slot,
        request.worker_id,
        report_fd,
        board,
        settings.master_pid,
        settings.preloaded,
        [sock.fileno()],
    )


def _await_adoption(master_pid: int, patience: float = 5.0) -> None:  # pragma: no cover
    """Wait until the master is our parent (the middle process exits at once): the worker
    asks to die with its parent after this, and that must mean the master."""
    deadline = time.monotonic() + patience
    while os.getppid() != master_pid and time.monotonic() < deadline:
        time.sleep(0.0005)
