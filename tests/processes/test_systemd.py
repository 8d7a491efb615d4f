"""systemd integration: the notify protocol over a real datagram socket, and the unit files."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import psutil
import pytest
from helpers import REPO, SUPPORT, kill_tree, wait_until

from jobpool.supervisor.systemd import Notifier


class Listener:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, list[str]]] = []

    def drain(self) -> list[tuple[float, list[str]]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return self.messages
            self.messages.append((time.monotonic(), data.decode().split("\n")))

    def first(self, line: str, after: int = 0) -> int | None:
        """Index of the first message from `after` on that has `line` (or a line starting
        with it, for KEY= prefixes)."""
        self.drain()
        for i, (_, lines) in enumerate(self.messages[after:], start=after):
            if any(x == line or (line.endswith("=") and x.startswith(line)) for x in lines):
                return i
        return None


def start_master(
    tmp_path: Path, cfg: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], IO[str]]:
    """`jobpool start -c cfg` in its own session, notifying the Listener at tmp_path/notify;
    its stderr goes to the returned file, which the caller closes."""
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(SUPPORT)]),
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        **(env or {}),
    }
    log = (tmp_path / "master.log").open("w")  # noqa: SIM115 - the caller closes it
    master = subprocess.Popen(
        [sys.executable, "-m", "jobpool.cli", "start", "-c", str(cfg)],
        env=full_env,
        stderr=log,
        start_new_session=True,
    )
    return master, log


def test_notifier_reaches_an_abstract_socket():
    name = f"jobpool-test-{os.getpid()}"
    listener = Listener("\0" + name)
    notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
    notifier.ready("2 workers")
    assert wait_until(lambda: listener.first("READY=1") is not None)
    assert listener.messages[0][1] == ["READY=1", "STATUS=2 workers"]


def test_notifier_without_socket_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("x")  # nothing to send to, nothing raised


def test_watchdog_pings_at_half_the_interval_only_for_our_pid(tmp_path):
    listener = Listener(str(tmp_path / "notify"))
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000"}
    notifier = Notifier(env)
    for now in (0.0, 0.5, 0.99, 1.0, 1.5, 2.0):
        notifier.watchdog(now)
    listener.drain()
    assert [lines for _, lines in listener.messages] == [["WATCHDOG=1"]] * 3
    other = Notifier({**env, "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None


@pytest.mark.timing
def test_master_speaks_the_notify_protocol(tmp_path, redis_url):
    listener = Listener(str(tmp_path / "notify"))
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text(
        f'[redis]\nurl = "{redis_url}"\n[pool]\nlease = 2\n[queues.default]\nworkers = 2\n'
    )
    master, log = start_master(tmp_path, cfg, {"WATCHDOG_USEC": "500000"})
    try:
        wait_until(lambda: listener.first("READY=1") is not None, timeout=20)
        workers = [
            p
            for p in psutil.Process(master.pid).children()
            if "jobpool: worker" in " ".join(p.cmdline())
        ]
        assert len(workers) == 2  # READY only once every worker is up
        ready = listener.first("READY=1")
        assert any(
            x.startswith("STATUS=2 workers (0 busy, 2 idle)") for x in listener.messages[ready][1]
        )

        start = time.monotonic()
        time.sleep(1.5)  # the measuring window
        listener.drain()
        pings = [t for t, lines in listener.messages if "WATCHDOG=1" in lines and t >= start]
        # Every 0.25 s (half the 0.5 s watchdog) makes 6. At least 3 is still one per watchdog
        # interval, what systemd needs, on a loaded machine that wakes the master late; more
        # than 12 would be a flood.
        assert 3 <= len(pings) <= 12, f"{len(pings)} pings in 1.5 s at a 0.5 s watchdog"

        mark = len(listener.drain())
        master.send_signal(signal.SIGHUP)
        wait_until(lambda: listener.first("READY=1", after=mark) is not None, timeout=20)
        reloading = listener.first("RELOADING=1", after=mark)
        assert reloading is not None and reloading < listener.first("READY=1", after=mark)
        assert any(x.startswith("MONOTONIC_USEC=") for x in listener.messages[reloading][1])

        mark = len(listener.drain())
        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=20) == 0
        assert listener.first("STOPPING=1", after=mark) is not None
    finally:
        if master.poll() is None:
            kill_tree(master.pid)
        log.close()


@pytest.mark.parametrize("unit", ["jobpool.service", "jobpool@.service"])
def test_unit_files_pass_systemd_analyze_verify(tmp_path, unit):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    text = (REPO / "systemd" / unit).read_text()
    assert "Type=notify" in text and "KillMode=mixed" in text and "ExecReload=" in text
    # verify checks that ExecStart's program exists: point it at this interpreter's jobpool.
    text = text.replace("/opt/jobpool/.venv/bin/jobpool", sys.executable)
    name = unit.replace("@.", "@test.")
    (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / name)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr


def test_status_says_draining_until_the_master_exits(tmp_path, redis_url):
    from jobs import Sleep

    listener = Listener(str(tmp_path / "notify"))
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text(
        f'imports = ["jobs"]\n[redis]\nurl = "{redis_url}"\n[pool]\nlease = 2\n'
        "[queues.default]\nworkers = 1\n"
    )
    master, log = start_master(tmp_path, cfg)
    try:
        wait_until(lambda: listener.first("READY=1") is not None, timeout=20)
        from jobpool import QueueManager

        with QueueManager(redis_url) as qm:
            out = tmp_path / "out"
            qm.push(Sleep(str(out), 2.5))  # the drain waits for it over a few master ticks
            wait_until(out.exists, 10, 0.02, "the job to start")
        mark = len(listener.drain())
        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=20) == 0
        listener.drain()
        stopping = listener.first("STOPPING=1", after=mark)
        assert stopping is not None
        statuses = [
            line
            for _, lines in listener.messages[stopping:]
            for line in lines
            if line.startswith("STATUS=")
        ]
        assert statuses and all(x.startswith("STATUS=draining") for x in statuses), statuses
    finally:
        if master.poll() is None:
            kill_tree(master.pid)
        log.close()
