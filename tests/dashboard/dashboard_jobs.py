"""Job classes the dashboard tests push, importable by the workers of a `jobpool start` that
the browser tests run (its config imports `dashboard_jobs`)."""

from __future__ import annotations

import os
import time

from jobpool import Job


class Echo(Job):
    """Completes at once and returns its arguments: any JSON, hostile text included."""

    max_tries = 1

    def __init__(self, *args: object, note: object = None):
        self.args, self.note = list(args), note

    def handle(self) -> object:
        return {"echo": self.args, "note": self.note}


class Nap(Job):
    """Sleeps `seconds`, then completes: run times for the charts."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def handle(self) -> None:
        time.sleep(self.seconds)


class Broken(Job):
    """Fails, with a traceback through a helper, until the file `fixed` exists."""

    max_tries = 1

    def __init__(self, fixed: str, note: object = None):
        self.fixed, self.note = fixed, note

    def handle(self) -> str:
        return _charge(self.fixed)


def _charge(fixed: str) -> str:
    if not os.path.exists(fixed):
        raise RuntimeError("the card was declined <b>twice</b>")
    return "charged"
