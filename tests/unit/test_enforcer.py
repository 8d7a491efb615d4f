"""The master's kills (supervisor/enforcer.py) read what workers write on their boards: what is
no job id there (an entry read in the middle of its write) must not stop the master."""

from __future__ import annotations

import time

from jobpool.supervisor.board import Board
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
