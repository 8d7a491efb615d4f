"""A worker's board: what it runs, as the master reads it back (no fork here: the read across a
fork is in tests/processes/test_board_fork.py)."""

from __future__ import annotations

import struct

from jobpool.supervisor.board import Board


def test_an_idle_worker_and_a_job_without_timeout():
    board = Board()
    assert board.read() is None
    board.started(1.0, None, "Job", "q:1")
    assert board.read().timeout is None
    board.finished()
    assert board.read() is None


def test_a_write_cut_short_by_a_death_is_read_as_it_stands():
    board = Board()
    board.started(3.0, 0.0, "Job", "q:1")
    struct.pack_into("<Q", board._mem, 0, 3)  # odd: the worker died inside its next write
    running = board.read()
    assert running is not None and running.job_id == "q:1"


def test_long_names_are_cut_to_fit():
    board = Board()
    board.started(1.0, None, "C" * 5000, "q:" + "9" * 5000)
    running = board.read()
    assert running.job_class.startswith("CCC") and running.job_id.startswith("q:99")
    assert len(running.job_class) + len(running.job_id) < 1024
