"""What a supervised worker is running, on a page of memory it shares with its master.

A busy worker that told its master about every job over a pipe would wake it twice per job, and
at thousands of jobs a second the master would cost as much CPU as a worker. Writing a few bytes
here costs no system call; the master reads them whenever it wakes for its own reasons (a signal,
a deadline, a job with a timeout, whose start the worker also announces on its pipe).

A worker with `concurrency = N` runs up to N jobs at once, so its board has N entries, one per
job slot; each is written by one thread only. Writes are guarded by a sequence number that is odd
while a write is under way (a seqlock), so the master never acts on half of one.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

_HEAD = struct.Struct("<QddHH")  # sequence, started, timeout (0: none), class bytes, id bytes
_SEQ = struct.Struct("<Q")
ENTRY = 512  # bytes per job slot
_TEXT = ENTRY - _HEAD.size
_READ_TRIES = 100


@dataclass(frozen=True)
class Running:
    """A job a worker runs: since `started` (time.monotonic(), the same clock host-wide)."""

    started: float
    timeout: float | None
    job_class: str
    job_id: str
    settled: bool = True  # False: read in the middle of a write (see Board.read)


class Board:
    """One worker's board, `slots` entries. Made by the master before the fork; the child
    writes, the master reads."""

    def __init__(self, slots: int = 1, fd: int | None = None) -> None:
        self.slots = max(1, slots)
        # Shared: the forked child writes the same pages. Anonymous when the master forks the
        # child itself; from `fd` (a memfd, see shareable()) when the fork server does.
        self._mem = mmap.mmap(-1 if fd is None else fd, ENTRY * self.slots)
        self._seq = [0] * self.slots

    @classmethod
    def shareable(cls, slots: int = 1) -> tuple[Board, int]:
        """A board whose memory another process can map: (the board, a descriptor of its
        memory to send there and then close)."""
        fd = os.memfd_create("jobpool-board", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, ENTRY * max(1, slots))
            return cls(slots, fd), fd
        except BaseException:
            os.close(fd)
            raise

    # -- the worker's side (entry `slot` by one thread only) -------------------------------------

    def started(
        self, started: float, timeout: float | None, job_class: str, job_id: str, slot: int = 0
    ) -> None:
        cls = job_class.encode()[: _TEXT // 2]
        jid = job_id.encode()[: _TEXT - len(cls)]
        mem, at = self._mem, slot * ENTRY
        seq = self._seq[slot] + 1
        _SEQ.pack_into(mem, at, seq)
        end = at + _HEAD.size + len(cls) + len(jid)
        mem[at + _HEAD.size : end] = cls + jid
        _HEAD.pack_into(mem, at, seq, started, timeout or 0.0, len(cls), len(jid))
        self._seq[slot] = seq + 1
        _SEQ.pack_into(mem, at, seq + 1)

    def finished(self, slot: int = 0) -> None:
        mem, at = self._mem, slot * ENTRY
        seq = self._seq[slot] + 1
        _HEAD.pack_into(mem, at, seq, 0.0, 0.0, 0, 0)
        self._seq[slot] = seq + 1
        _SEQ.pack_into(mem, at, seq + 1)

    # -- the master's side ---------------------------------------------------------------------

    def read(self, slot: int = 0) -> Running | None:
        """The job running in `slot` now, or None when it is idle. A worker that died in the
        middle of a write leaves it half done: then what is there is returned as it is, not
        `settled`, to be shown but not acted on (its fields may belong to two jobs)."""
        mem, at = self._mem, slot * ENTRY
        settled = False
        for _ in range(_READ_TRIES):
            seq, started, timeout, n_cls, n_id = _HEAD.unpack_from(mem, at)
            text = mem[at + _HEAD.size : at + _HEAD.size + n_cls + n_id]
            if seq % 2 == 0 and _SEQ.unpack_from(mem, at)[0] == seq:
                settled = True
                break
        if not started:
            return None
        return Running(
            started,
            timeout or None,
            text[:n_cls].decode(errors="replace"),
            text[n_cls:].decode(errors="replace"),
            settled,
        )

    def read_all(self) -> list[Running]:
        """Every job the worker runs now (none when idle)."""
        if self.slots == 1:
            one = self.read(0)
            return [] if one is None else [one]
        return [r for r in (self.read(i) for i in range(self.slots)) if r is not None]

    def close(self) -> None:
        self._mem.close()
