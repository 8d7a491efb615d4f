"""Job classes the tests push. They live in an importable module so that worker processes
started by the tests (`imports = ["jobs"]`) register the same classes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from jobpool import Job, current_manager


class Record(Job):
    """Appends its tag to a file: proves it ran, and how many times."""

    def __init__(self, path: str, tag: str = "ran"):
        self.path, self.tag = path, tag

    def handle(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"{self.tag}\n")


def runs(path: str | Path) -> list[str]:
    p = Path(path)
    return p.read_text().split() if p.exists() else []


class Fail(Job):
    """Always fails; records the exception its failed() hook receives."""

    max_tries = 3
    retry_delay = 0.05

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        raise RuntimeError("boom")

    def failed(self, exc: BaseException) -> None:
        with open(self.path, "a") as f:
            f.write(f"failed:{type(exc).__name__}:{exc}\n")


class Sleep(Job):
    """Sleeps, then records; for drains, leases and shutdown tests."""

    max_tries = 3
    retry_delay = 0.05

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    def handle(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"start:{os.getpid()}\n")
        time.sleep(self.seconds)
        with open(self.path, "a") as f:
            f.write(f"done:{os.getpid()}\n")


class KillSelf(Job):
    """SIGKILLs its own worker: a poison job."""

    max_tries = 2
    retry_delay = 0.05

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"start:{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)

    def failed(self, exc: BaseException) -> None:
        with open(self.path, "a") as f:
            f.write(f"failed:{type(exc).__name__}:{exc}\n")


class FollowUp(Job):
    """Pushes another job from handle()."""

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        current_manager().push(Record(self.path, "follow-up"))
