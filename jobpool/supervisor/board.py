"""What a supervised worker is running, on a page of memory it shares with its master.

A busy worker that told its master about every job over a pipe would wake it twice per job, and
at thousands of jobs a second the master would cost as much CPU as a worker. Writing a few bytes
here costs no system call; the master reads them whenever it wakes for its own reasons (a signal,
a deadline, a job with a timeout, whose start the worker also announces on its pipe).

Writes are guarded by a sequence number that is odd while a write is under way (a seqlock), so
the master never acts on half of one.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

_HEAD = struct.Struct("<QddHH")  # sequence, started, timeout (0: none), class bytes, id bytes
_SEQ = struct.Struct("<Q")
SIZE = 1024
_TEXT = SIZE - _HEAD.size
_READ_TRIES = 100


@dataclass(frozen=True)
class Running:
    """The job a worker runs: since `started` (time.monotonic(), the same clock host-wide)."""

    started: float
    timeout: float | None
    job_class: str
    job_id: str


class Board:
    """One worker's board. Made by the master before the fork; the child writes, the master
    reads."""

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, SIZE)  # anonymous and shared: the forked child writes the same
        self._seq = 0

    # -- the worker's side ---------------------------------------------------------------------

    def started(self, started: float, timeout: float | None, job_class: str, job_id: str) -> None:
        cls = job_class.encode()[: _TEXT // 2]
        jid = job_id.encode()[: _TEXT - len(cls)]
        mem = self._mem
        self._seq += 1
        _SEQ.pack_into(mem, 0, self._seq)
        end = _HEAD.size + len(cls) + len(jid)
        mem[_HEAD.size : end] = cls + jid
        _HEAD.pack_into(mem, 0, self._seq, started, timeout or 0.0, len(cls), len(jid))
        self._seq += 1
        _SEQ.pack_into(mem, 0, self._seq)

    def finished(self) -> None:
        self._seq += 1
        _HEAD.pack_into(self._mem, 0, self._seq, 0.0, 0.0, 0, 0)
        self._seq += 1
        _SEQ.pack_into(self._mem, 0, self._seq)

    # -- the master's side ---------------------------------------------------------------------

    def read(self) -> Running | None:
        """The job running now, or None when idle. A worker that died in the middle of a write
        leaves it half done: then what is there is returned as it is."""
        mem = self._mem
        for _ in range(_READ_TRIES):
            seq, started, timeout, n_cls, n_id = _HEAD.unpack_from(mem, 0)
            text = mem[_HEAD.size : _HEAD.size + n_cls + n_id]
            if seq % 2 == 0 and _SEQ.unpack_from(mem, 0)[0] == seq:
                break
        if not started:
            return None
        return Running(
            started,
            timeout or None,
            text[:n_cls].decode(errors="replace"),
            text[n_cls:].decode(errors="replace"),
        )

    def close(self) -> None:
        self._mem.close()
