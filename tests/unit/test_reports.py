"""jobpool.supervisor.reports as pure logic: what a worker writes on its report pipe reads back as
the same reports in the master, however the bytes are cut by the reads. No Redis, no fork."""

from __future__ import annotations

import pytest

from jobpool.drivers.base import Outcome
from jobpool.supervisor.reports import (
    Finished,
    Ready,
    Report,
    ReportReader,
    TimedJobStarted,
    parse,
)

REPORTS: list[Report] = [
    Ready(),
    TimedJobStarted(),
    Finished(Outcome.COMPLETED.value, 0.25, "myapp.jobs:SendMail"),
    Finished(Outcome.RETRYING.value, 12.000001, "Resize"),
    Finished(Outcome.FAILED.value, 0.0, "a class name with spaces"),
    Finished("completed", 1.5, "Ünïcode"),
]


@pytest.mark.parametrize("report", REPORTS)
def test_each_report_reads_back_as_itself(report: Report) -> None:
    line = report.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse(line[:-1]) == report


def test_the_lines_are_those_the_protocol_documents() -> None:
    assert Ready().encode() == b"R\n"
    assert TimedJobStarted().encode() == b"B\n"
    assert Finished("completed", 0.5, "Mail").encode() == b"I completed 0.500000 - Mail\n"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_a_stream_cut_anywhere_reads_back_whole_and_in_order(chunk: int) -> None:
    stream = b"".join(report.encode() for report in REPORTS)
    reader, got = ReportReader(), []
    for i in range(0, len(stream), chunk):
        got += reader.feed(stream[i : i + chunk])
    assert got == REPORTS


def test_a_line_without_its_end_waits_for_it() -> None:
    reader = ReportReader()
    assert reader.feed(b"R\nI completed 0.1") == [Ready()]
    assert reader.feed(b"00000 - Mail") == []
    assert reader.feed(b"\n") == [Finished("completed", 0.1, "Mail")]


def test_seconds_keep_the_microsecond() -> None:
    [got] = ReportReader().feed(Finished("completed", 3.1415926, "Pi").encode())
    assert isinstance(got, Finished) and got.seconds == 3.141593


def test_a_line_break_in_a_class_name_cannot_end_the_line_early() -> None:
    [got] = ReportReader().feed(Finished("failed", 1.0, "Evil\nR").encode())
    assert got == Finished("failed", 1.0, "Evil R")


@pytest.mark.parametrize(
    "line",
    [b"", b"X", b"I", b"I completed", b"I completed 0.5", b"I completed soon Mail", b"RR"],
)
def test_lines_that_are_no_report_are_skipped(line: bytes) -> None:
    assert parse(line) is None
    assert ReportReader().feed(line + b"\nR\n") == [Ready()]


def test_a_job_of_another_queue_than_its_workers_keeps_its_queue() -> None:
    """A worker serving several queues reports each job's own queue for the metrics."""
    [got] = ReportReader().feed(Finished("completed", 0.5, "Mail", "urgent").encode())
    assert got == Finished("completed", 0.5, "Mail", "urgent")
