"""`@job` functions (and a few classes with results) that the tests push. An importable module,
so that worker processes started by the tests (`imports = ["jobs", "job_functions"]`) register
the same jobs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from jobpool import Job, current_job, current_manager, job


@job
def add(a: int, b: int) -> int:
    return a + b


@job(queue="emails", max_tries=5, retry_delay=10, timeout=30, name="tests.send_email")
def send_email(to: str, subject: str = "Hello", *, urgent: bool = False) -> str:
    return f"sent {subject!r} to {to}{' (urgent)' if urgent else ''}"


@job
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@job(max_tries=2, retry_delay=0.05)
def flaky(path: str, fail_first: int) -> int:
    """Fails its first `fail_first` attempts, then returns the attempt it succeeded on."""
    with open(path, "a") as f:
        f.write("run\n")
    with open(path) as f:
        attempt = len(f.read().split())
    if attempt <= fail_first:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return attempt


@job(max_tries=1)
def boom(message: str) -> None:
    raise ValueError(message)


@job(max_tries=1)
def unstorable() -> object:
    return object()


@job(max_tries=1)
def sized(n: int) -> str:
    return "x" * n


def _whoami() -> dict[str, Any]:
    me = current_job()
    return {
        "id": me.id,
        "queue": me.queue,
        "attempt": me.attempt,
        "max_tries": me.max_tries,
        "enqueued_at": me.enqueued_at,
        "name": me.name,
        "manager_is_current": me.manager is current_manager(),
        "pid": os.getpid(),
    }


@job(max_tries=2, retry_delay=0.05)
def whoami(fail: bool = False) -> dict[str, Any]:
    """Returns what current_job() says; with `fail`, its first attempt fails."""
    if fail and current_job().attempt == 1:
        raise RuntimeError("first attempt fails")
    return _whoami()


@job
async def async_whoami() -> dict[str, Any]:
    await asyncio.sleep(0)
    return _whoami()


@job
def log_lines(message: str) -> None:
    """Logs through a logger of its own, as application code does."""
    logging.getLogger("userapp.emails").warning("%s", message)


@job
def push_follow_up(a: int, b: int) -> str:
    """Pushes another function job through the worker's manager, without naming it."""
    return add.push(a, b)


class Multiply(Job):
    """A class job with a result."""

    def __init__(self, a: float, b: float):
        self.a, self.b = a, b

    def handle(self) -> float:
        return self.a * self.b


class WhoAmI(Job):
    """Records what current_job() says inside handle() and failed() in its file."""

    max_tries = 1

    def __init__(self, path: str, fail: bool = False):
        self.path, self.fail = path, fail

    def handle(self) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("fails on purpose")
        return _whoami()

    def failed(self, exc: BaseException) -> None:
        import json

        with open(self.path, "w") as f:
            json.dump(_whoami(), f)


@job
def log_after(message: str, seconds: float) -> None:
    """Waits, then logs through a logger of its own: many at once on a threaded worker."""
    time.sleep(seconds)
    logging.getLogger("userapp.emails").warning("%s", message)


@job(rate_limit="2/s")
def throttled_fn() -> None:
    """A job function with a rate limit of its own."""
