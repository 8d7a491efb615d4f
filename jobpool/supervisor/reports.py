"""The report pipe from a supervised worker to its master: every message, how it is written (in
the child, child_main.py) and how it is read (in the master, children.py).

One message is one line of ASCII words, its first word a tag:

    R                              Ready: the child imported its jobs, connected, takes work
    B                              TimedJobStarted: a job with a timeout started; the master
                                   wakes and reads which job, and since when, from the board
    I OUTCOME SECONDS JOB_CLASS    Finished: a job ended with OUTCOME after SECONDS (to the
                                   microsecond), for the metrics; JOB_CLASS is the rest of the line

Only counters and wake-ups travel here: what a child runs now is on its Board (board.py). A line
the master cannot read is skipped, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass

READY = b"R"
TIMED_JOB_STARTED = b"B"
FINISHED = b"I"


@dataclass(frozen=True)
class Ready:
    """The child imported its job modules, connected, and takes work."""

    def encode(self) -> bytes:
        return READY + b"\n"


@dataclass(frozen=True)
class TimedJobStarted:
    """A job with a timeout started: the master wakes to arm the timeout from the board."""

    def encode(self) -> bytes:
        return TIMED_JOB_STARTED + b"\n"


@dataclass(frozen=True)
class Finished:
    """A job ended: its outcome (an Outcome's value), how long it ran, its class, and its
    queue ("" for the worker's own: a worker may serve several)."""

    outcome: str
    seconds: float
    job_class: str
    queue: str = ""

    def encode(self) -> bytes:
        # A line break inside the class name would end the line early: it becomes a space.
        # Queue names have no spaces (jobpool/names.py); the class, last, may.
        job_class = self.job_class.replace("\n", " ")
        return b"%s %s %.6f %s %s\n" % (
            FINISHED,
            self.outcome.encode(),
            self.seconds,
            (self.queue or "-").encode(errors="replace"),
            job_class.encode(errors="replace"),
        )


Report = Ready | TimedJobStarted | Finished


def parse(line: bytes) -> Report | None:
    """One line, without its line break, as the report it encodes; None if it encodes none."""
    tag, _, rest = line.partition(b" ")
    if tag == READY:
        return Ready()
    if tag == TIMED_JOB_STARTED:
        return TimedJobStarted()
    if tag == FINISHED:
        words = rest.split(b" ", 3)
        if len(words) != 4:
            return None
        outcome, seconds, queue, job_class = (word.decode(errors="replace") for word in words)
        try:
            return Finished(outcome, float(seconds), job_class, "" if queue == "-" else queue)
        except ValueError:
            return None
    return None


class ReportReader:
    """The master's end of one child's pipe: bytes in, whole reports out. A line cut between
    two reads waits for its end."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[Report]:
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [report for line in lines if (report := parse(line)) is not None]
