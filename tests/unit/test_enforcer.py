"""The master's kills (supervisor/enforcer.py) read what workers write on their boards: what is
no job id there (an entry read in the middle of its write) must not stop the master, and no
worker is killed for what an entry read in the middle of its write says."""

from __future__ import annotations

import time

from jobpool.config import config_from_dict
from jobpool.supervisor.board import _SEQ, Board
from jobpool.supervisor.cancels import CancelWatch
from jobpool.supervisor.children import Child, Slot
from jobpool.supervisor.enforcer import Enforcer


class FakeDriver:
    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str]]] = []

    def cancel_requests(self, queue: str, job_ids: list[str]) -> set[str]:
        self.asked.append((queue, list(job_ids)))
        return set()


def test_a_board_entry_with_no_job_id_is_passed_over_by_the_look_for_cancels():
    driver = FakeDriver()
    torn, whole = Board(), Board()
    torn.started(time.monotonic(), None, "SendEmail", "")
    whole.started(time.monotonic(), None, "SendEmail", "emails:1a2b")
    children = [
        Child(2**22 + 1, Slot("emails", 0), "w0", -1, 0.0, torn),
        Child(2**22 + 2, Slot("emails", 1), "w1", -1, 0.0, whole),
    ]
    Enforcer(CancelWatch(driver)).stop_cancelled(children, time.monotonic())  # type: ignore[arg-type]
    assert driver.asked == [("emails", ["emails:1a2b"])]
    assert all(child.killed is None for child in children)


def torn(board: Board) -> Board:
    """`board` as a worker leaves it in the middle of a write (its sequence number odd)."""
    _SEQ.pack_into(board._mem, 0, 2 * 10**6 + 1)
    return board


def test_an_entry_read_in_the_middle_of_its_write_is_shown_but_not_settled():
    board = Board()
    board.started(time.monotonic(), 5.0, "SendEmail", "emails:1a2b")
    assert board.read() is not None and board.read().settled  # type: ignore[union-attr]
    running = torn(board).read()
    assert running is not None and running.job_id == "emails:1a2b" and not running.settled


def test_no_worker_is_killed_for_a_timeout_its_board_says_in_the_middle_of_a_write():
    config = config_from_dict({"queues": {"emails": {"timeout": 5}}}, env={})
    long_ago = time.monotonic() - 60  # far past the 5 s timeout: a settled entry is killed
    settled, half_written = Board(), Board()
    settled.started(long_ago, 5.0, "SendEmail", "emails:1")
    half_written.started(long_ago, 5.0, "SendEmail", "emails:2")
    children = [
        Child(2**22 + 1, Slot("emails", 0), "w0", -1, 0.0, settled),
        Child(2**22 + 2, Slot("emails", 1), "w1", -1, 0.0, torn(half_written)),
    ]
    Enforcer(CancelWatch(FakeDriver())).enforce(config, children, time.monotonic())  # type: ignore[arg-type]
    assert children[0].killed is not None and children[1].killed is None
