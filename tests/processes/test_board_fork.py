"""A worker's board across a real fork: written by the forked worker, read by its master."""

from __future__ import annotations

import os

from jobpool.supervisor.board import Board


def test_the_master_reads_what_the_forked_worker_wrote():
    board = Board()
    pid = os.fork()
    if pid == 0:  # the worker
        board.started(12.5, 30.0, "SendEmailJob", "emails:abc")
        os._exit(0)
    os.waitpid(pid, 0)

    running = board.read()
    assert running is not None
    assert (running.started, running.timeout) == (12.5, 30.0)
    assert (running.job_class, running.job_id) == ("SendEmailJob", "emails:abc")
