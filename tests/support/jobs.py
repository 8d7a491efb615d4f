"""Job classes the tests push. They live in an importable module so that worker processes
started by the tests (`imports = ["jobs"]`) register the same classes."""

from __future__ import annotations

import builtins
import os
import signal
import threading
import time
from pathlib import Path

import jobpool
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


class SlowFirst(Job):
    """Sleeps `first` seconds on its first run and `then` seconds on any later run (the file
    tells which run this is), then records: slow until it is redelivered."""

    max_tries = 3
    retry_delay = 0.05

    def __init__(self, path: str, first: float, then: float = 0.0):
        self.path, self.first, self.then = path, first, then

    def handle(self) -> None:
        earlier = any(line.startswith("start:") for line in runs(self.path))
        with open(self.path, "a") as f:
            f.write(f"start:{os.getpid()}\n")
        time.sleep(self.then if earlier else self.first)
        with open(self.path, "a") as f:
            f.write(f"done:{os.getpid()}\n")


def hold_gil(seconds: float) -> None:
    """Block for `seconds` in one C call that keeps the GIL: libc poll() with no descriptors,
    called through ctypes.PyDLL, which (unlike CDLL) does not release the GIL around the call.
    No other thread of the process runs meanwhile, as with a long C extension call."""
    import ctypes

    ctypes.PyDLL(None).poll(None, 0, int(seconds * 1000))


class HoldGIL(Job):
    """Holds the GIL for `seconds` in a single C call; a lease renewed from a thread would lapse."""

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    def handle(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"start:{os.getpid()}\n")
        hold_gil(self.seconds)
        with open(self.path, "a") as f:
            f.write(f"done:{os.getpid()}\n")


class Stamp(Job):
    """Appends the unix time each attempt starts; the first `fail_first` attempts then fail."""

    max_tries = 3
    retry_delay = 0.05

    def __init__(self, path: str, fail_first: int = 0):
        self.path, self.fail_first = path, fail_first

    def handle(self) -> None:
        earlier = len(runs(self.path))
        with open(self.path, "a") as f:
            f.write(f"{time.time():.6f}\n")
        if earlier < self.fail_first:
            raise RuntimeError(f"attempt {earlier + 1} fails on purpose")


def stamps(path: str | Path) -> list[float]:
    """The start times a Stamp job recorded, one per attempt."""
    return [float(s) for s in runs(path)]


# -- jobs of the supervisor tests (tests/processes/test_supervisor.py) ------------------------

_HELD: list[bytes] = []  # what Hog jobs allocated, kept for the rest of their worker's life


def _note(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(f"{line}\n")


class ExitJob(Job):
    """Ends its worker with os._exit(1): no exception, no cleanup, a poison job."""

    max_tries = 2
    retry_delay = 0.05

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        _note(self.path, f"start:{os.getpid()}")
        os._exit(1)

    def failed(self, exc: BaseException) -> None:
        _note(self.path, f"failed:{type(exc).__name__}:{exc}")


class Hog(Job):
    """Allocates `mib` MiB with every page touched and keeps it (a leak), then sleeps."""

    def __init__(self, path: str, mib: int, seconds: float = 0.0):
        self.path, self.mib, self.seconds = path, mib, seconds

    def handle(self) -> None:
        _note(self.path, f"start:{os.getpid()}")
        _HELD.append(b"\x01" * (self.mib * 1024 * 1024))  # memset: every page is resident
        time.sleep(self.seconds)
        _note(self.path, f"done:{os.getpid()}")


class Spike(Job):
    """After `wait` s, holds `mib` MiB for `hold` s and frees it, then runs `after` s more: a
    short excursion above a memory limit that only a frequent sampler sees."""

    max_tries = 1

    def __init__(self, path: str, mib: int, wait: float, hold: float, after: float):
        self.path, self.mib = path, mib
        self.wait, self.hold, self.after = wait, hold, after

    def handle(self) -> None:
        _note(self.path, f"start:{os.getpid()}")
        time.sleep(self.wait)
        data = b"\x01" * (self.mib * 1024 * 1024)
        _note(self.path, "peak")
        time.sleep(self.hold)
        del data
        _note(self.path, "freed")
        time.sleep(self.after)
        _note(self.path, f"done:{os.getpid()}")


class Spin(Job):
    """Keeps the CPU busy in pure Python for `seconds`, far past its 1 s timeout."""

    timeout = 1
    max_tries = 1

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    def handle(self) -> None:
        _note(self.path, f"start:{os.getpid()}")
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            pass
        _note(self.path, f"done:{os.getpid()}")


# -- jobs of the bad-input tests (tests/processes/test_bad_input.py) --------------------------


class RaiseOnce(Job):
    """Its first run raises SystemExit(3) or KeyboardInterrupt from handle(); later runs record
    the worker's pid."""

    max_tries = 2
    retry_delay = 0.05

    def __init__(self, path: str, kind: str):
        self.path, self.kind = path, kind

    def handle(self) -> None:
        earlier = runs(self.path)
        _note(self.path, f"run:{os.getpid()}")
        if not earlier:
            raise SystemExit(3) if self.kind == "exit" else KeyboardInterrupt()


class HookRaises(Job):
    """Fails for good at once, and its failed() hook raises too."""

    max_tries = 1

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        _note(self.path, f"run:{os.getpid()}")
        raise ValueError("handle broke")

    def failed(self, exc: BaseException) -> None:
        _note(self.path, f"hook:{os.getpid()}")
        raise RuntimeError("the failed() hook broke too")


# -- jobs of the edge tests (async jobs, hostile jobs) -----------------------------------------


class AsyncRecord(Job):
    """An `async def handle()`: records the id of the event loop it ran on, after awaiting."""

    max_tries = 2
    retry_delay = 0.05

    def __init__(self, path: str, fail: bool = False):
        self.path, self.fail = path, fail

    async def handle(self) -> None:
        import asyncio

        await asyncio.sleep(0.01)
        _note(self.path, f"loop:{id(asyncio.get_running_loop())}:{os.getpid()}")
        if self.fail:
            raise RuntimeError("async boom")

    async def failed(self, exc: BaseException) -> None:
        import asyncio

        await asyncio.sleep(0.01)
        _note(self.path, f"failed:{type(exc).__name__}:{exc}")


class _Later:
    """An awaitable that is not a coroutine: what some libraries hand back."""

    def __init__(self, path: str):
        self.path = path

    def __await__(self):  # type: ignore[no-untyped-def]
        import asyncio

        yield from asyncio.sleep(0.01).__await__()
        _note(self.path, "awaited")


class ReturnsAwaitable(Job):
    """A plain handle() that returns an awaitable: it is awaited like a coroutine."""

    def __init__(self, path: str):
        self.path = path

    def handle(self):  # type: ignore[no-untyped-def]
        return _Later(self.path)


class AsyncSleep(Job):
    """Awaits asyncio.sleep far past its 1 s timeout."""

    timeout = 1
    max_tries = 1

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    async def handle(self) -> None:
        import asyncio

        _note(self.path, f"start:{os.getpid()}")
        await asyncio.sleep(self.seconds)
        _note(self.path, f"done:{os.getpid()}")


class Forker(Job):
    """Forks; the child returns from handle() as if it were the worker (a careless job)."""

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        pid = os.fork()
        _note(self.path, f"{'child' if pid == 0 else 'parent'}:{os.getpid()}")
        if pid:
            os.waitpid(pid, 0)


class CloseFds(Job):
    """Closes every descriptor above stderr of its worker, then records."""

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        os.closerange(3, 4096)
        _note(self.path, f"closed:{os.getpid()}")


class Spawner(Job):
    """Starts `sleep` in a subprocess and waits on it, past its 1 s timeout."""

    timeout = 1
    max_tries = 1

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        import subprocess

        proc = subprocess.Popen(["sleep", "60"])
        _note(self.path, f"sleep:{proc.pid}")
        proc.wait()


# -- jobs of the retry control, unique and cancel tests (issue 13) -----------------------------


class Picky(Job):
    """Raises the builtin exception named `raises`; retries only connection errors, never a
    refused connection; records what its failed() hook receives."""

    max_tries = 3
    retry_delay = 0.05
    retry_on = (ConnectionError, TimeoutError)
    dont_retry_on = (ConnectionRefusedError,)

    def __init__(self, path: str, raises: str):
        self.path, self.raises = path, raises

    def handle(self) -> None:
        _note(self.path, f"run:{self.raises}")
        raise getattr(builtins, self.raises)("picky")

    def failed(self, exc: BaseException) -> None:
        _note(self.path, f"failed:{type(exc).__name__}:{exc}")


class AskRetry(Job):
    """Raises jobpool.Retry(delay) every time; records its failed() hook."""

    max_tries = 2

    def __init__(self, path: str, delay: float | None):
        self.path, self.delay = path, delay

    def handle(self) -> None:
        _note(self.path, "run")
        raise jobpool.Retry(delay=self.delay)

    def failed(self, exc: BaseException) -> None:
        _note(self.path, f"failed:{type(exc).__name__}:{exc}")


class GiveUp(Job):
    """Raises jobpool.Fail on its first attempt, with attempts to spare."""

    max_tries = 5

    def __init__(self, path: str):
        self.path = path

    def handle(self) -> None:
        _note(self.path, "run")
        raise jobpool.Fail("no such user")

    def failed(self, exc: BaseException) -> None:
        _note(self.path, f"failed:{type(exc).__name__}:{exc}")


class Once(Job):
    """A unique job: one per set of arguments while it waits or runs."""

    unique = True

    def __init__(self, path: str, order: int):
        self.path, self.order = path, order

    def handle(self) -> None:
        _note(self.path, f"order:{self.order}")


class Linger(Job):
    """Runs `seconds` (recording its start and end) with attempts to spare and a failed() hook:
    a job to cancel while it runs."""

    max_tries = 3
    retry_delay = 0.05

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    def handle(self) -> None:
        _note(self.path, f"start:{os.getpid()}")
        time.sleep(self.seconds)
        _note(self.path, f"done:{os.getpid()}")

    def failed(self, exc: BaseException) -> None:
        _note(self.path, f"failed:{type(exc).__name__}:{exc}")


# -- jobs of the concurrency tests (tests/drivers/test_concurrency.py, tests/processes/...) ---


class Overlap(Job):
    """Waits `seconds` (a network call, as far as the worker can tell), then records its pid,
    thread and its start and end times: jobs that ran at once overlap."""

    max_tries = 2
    retry_delay = 0.05

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    def handle(self) -> None:
        started = time.time()
        _note(self.path, f"start:{os.getpid()}")
        time.sleep(self.seconds)
        _note(self.path, f"{os.getpid()} {threading.get_ident()} {started:.6f} {time.time():.6f}")


class AsyncOverlap(Job):
    """Overlap as an async job: awaits, on the worker's event loop."""

    max_tries = 2
    retry_delay = 0.05

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    async def handle(self) -> None:
        import asyncio

        started = time.time()
        await asyncio.sleep(self.seconds)
        _note(self.path, f"{os.getpid()} {threading.get_ident()} {started:.6f} {time.time():.6f}")


def windows(path: str | Path) -> list[tuple[int, int, float, float]]:
    """The (pid, thread, start, end) lines Overlap and AsyncOverlap jobs wrote."""
    p = Path(path)
    rows = [line.split() for line in p.read_text().splitlines()] if p.exists() else []
    return [(int(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows if len(r) == 4]


class Stuck(Job):
    """A sync job that sleeps far past its 1 s timeout: a thread cannot be stopped."""

    timeout = 1
    max_tries = 2
    retry_delay = 0.05

    def __init__(self, path: str, seconds: float):
        self.path, self.seconds = path, seconds

    def handle(self) -> None:
        _note(self.path, f"start:{os.getpid()}")
        time.sleep(self.seconds)
        _note(self.path, f"done:{os.getpid()}")

    def failed(self, exc: BaseException) -> None:
        _note(self.path, f"failed:{type(exc).__name__}")


class ManyTries(Job):
    """Does nothing, with attempts to spare: for records of many failed attempts."""

    max_tries = 15

    def handle(self) -> None:
        pass


class Throttled(Job):
    """At most 3 start per second, across every worker."""

    rate_limit = "3/s"

    def __init__(self, path: str = "/dev/null"):
        self.path = path

    def handle(self) -> None:
        _note(self.path, f"{time.time():.6f}")


class OneAtATime(Job):
    """At most one runs at a time, across every worker."""

    max_running = 1

    def handle(self) -> None:
        pass
