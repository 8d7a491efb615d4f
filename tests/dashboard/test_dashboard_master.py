"""`[dashboard] listen` under `jobpool start`: the master keeps its dashboard child running,
outlives it, and takes it down with it; `jobpool dashboard` warns when it is exposed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
from dashboard_support import wait_http
from helpers import wait_until

pytest.importorskip("starlette", reason="the dashboard extra is not installed")


def _dashboard_pid(master_pid: int) -> int:
    def found() -> int | None:
        for child in psutil.Process(master_pid).children():
            try:
                if "dashboard" in " ".join(child.cmdline()):
                    return child.pid
            except psutil.Error:
                continue
        return None

    return wait_until(found, 10, 0.05, "the master's dashboard child")


def test_the_master_restarts_its_dashboard_and_outlives_it(served) -> None:  # noqa: ANN001
    m, base = served(token=None, workers=1)
    first = _dashboard_pid(m.pid)
    os.kill(first, signal.SIGKILL)
    m.wait_log(r"dashboard exited \(code -9\); starting it again")
    second = _dashboard_pid(m.pid)
    assert second != first
    wait_http(base + "/healthz")
    m.assert_running()
    assert len(m.workers()) == 1
    os.kill(m.pid, signal.SIGKILL)  # no drain, no goodbye: the child notices by itself
    wait_until(lambda: not psutil.pid_exists(second) or _zombie(second), 5, 0.1, "it to exit")


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_listening_beyond_loopback_without_a_token_warns(standalone, tmp_path: Path) -> None:  # noqa: ANN001
    standalone(token=None, host="0.0.0.0")
    log = (tmp_path / "dashboard-0.log").read_text()
    assert "without a token" in log and "read-only" in log
