"""Process titles, the Linux parent-death signal and the C library's memory settings: what `ps`
shows, how children follow their parent out, and what a worker's threads cost."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
from collections.abc import Callable

import psutil
import setproctitle

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def set_title(title: str) -> None:
    """Set the title `ps`, `top` and psutil show (e.g. ``jobpool: worker emails idle``)."""
    setproctitle.setproctitle(title)


def worker_title(
    name: str, busy: tuple[str, str] | None = None, *, slots: tuple[int, int] | None = None
) -> str:
    """``jobpool: worker NAME idle``, ``jobpool: worker NAME busy JOBCLASS JOBID``, or for a
    worker that runs many jobs at once ``jobpool: worker NAME busy RUNNING/CONCURRENCY``."""
    if slots is not None:
        return f"jobpool: worker {name} busy {slots[0]}/{slots[1]}"
    if busy is None:
        return f"jobpool: worker {name} idle"
    return f"jobpool: worker {name} busy {busy[0]} {busy[1]}"


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux only).

    Callers still check getppid() in their loops: the request is lost if the parent died
    before it was made, and other systems have no such call. Returns True if it was set.
    """
    return _prctl(_PR_SET_PDEATHSIG, int(sig))


def become_subreaper() -> bool:
    """Have the orphans among this process's descendants handed to it rather than to init
    (Linux only): the master then waits for the workers its fork server forks through a
    process that exits at once. Returns True if it was set."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _prctl(option: int, value: int) -> bool:
    libc = _libc()
    try:
        return libc is not None and bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except AttributeError:  # no prctl: not Linux
        return False


_M_ARENA_MAX = -8  # mallopt(): how many malloc arenas glibc may create


def limit_malloc_arenas(count: int) -> bool:
    """Let glibc's malloc create at most `count` arenas in this process, unless the operator
    chose with MALLOC_ARENA_MAX. By default each thread that allocates may get an arena of its
    own (up to 8 per core), each holding freed memory of its own; a worker's job threads
    allocate under the GIL, one at a time, so more arenas save no waiting and cost resident
    memory (about 0.8 MB in a worker with 32 threads, measured). True if it was set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _libc()
    try:
        return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, count) == 1)
    except AttributeError:  # no mallopt: not glibc
        return False


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, found once per process tree: find_library() runs `ldconfig -p` (a
    process, and its whole output to parse), which a worker forked from the master need not
    repeat."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_self() -> int:
    """This process's resident size, from one small /proc read: a cheap upper bound of USS."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def owned_memory(pid: int) -> int:
    """Bytes a process owns: its USS plus its descendants' USS.

    USS leaves out pages shared copy-on-write with the master, which plain RSS counts against
    every child, and unlike peak RSS it falls again when memory is freed.
    """
    proc = psutil.Process(pid)
    total = proc.memory_full_info().uss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += child.memory_full_info().uss
    return total


def same_file(fd: int) -> Callable[[], bool]:
    """A check that `fd` still is the file it is now. A job may close its worker's descriptors,
    and the next socket opened takes the lowest free number: writing to a number that changed
    hands would write into that socket."""
    try:
        first = os.fstat(fd)
    except OSError:
        return lambda: False

    def check() -> bool:
        try:
            now = os.fstat(fd)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (first.st_dev, first.st_ino)

    return check
