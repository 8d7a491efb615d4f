"""`jobpool start` as the tests run it: a master in its own process group, its log, its
workers (read back through psutil titles), and a fixture that kills every group it started."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import REPO, SUPPORT, wait_until

# The environment variables the config loader reads would silently override the test's TOML.
_CONFIG_ENV = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "JOBPOOL_PREFIX")
_EXIT_LINE = re.compile(r"worker (\S+) exited: pid (\d+), reason (\w+)")


def toml(
    url: str,
    *,
    imports: Iterable[str] = ("jobs",),
    pool: dict[str, Any] | None = None,
    queues: dict[str, dict[str, Any]] | None = None,
) -> str:
    """A config: short lease and grace by default, `queues` as given (default: 2 workers)."""
    pool = {"lease": 2, "graceful_timeout": 2, **(pool or {})}
    queues = {"default": {"workers": 2}} if queues is None else queues
    lines = [f"imports = {json.dumps(list(imports))}", "[redis]", f"url = {json.dumps(url)}"]
    lines += ["[pool]", *(f"{k} = {json.dumps(v)}" for k, v in pool.items())]
    for name, settings in queues.items():
        lines += [f"[queues.{name}]", *(f"{k} = {json.dumps(v)}" for k, v in settings.items())]
    return "\n".join(lines) + "\n"


def _title(proc: psutil.Process) -> str:
    """What `ps` shows: setproctitle rewrites argv, so cmdline() carries the title."""
    if proc.status() == psutil.STATUS_ZOMBIE:
        return ""
    return " ".join(proc.cmdline()).strip()


def slot_of(title: str) -> str:
    """`default.0` from `jobpool: worker default.0 idle`."""
    return title.split()[2]


class Master:
    """One `jobpool start` in a new session (its pid is its process group id)."""

    def __init__(self, tmp_path: Path, cfg_text: str, pythonpath: Iterable[Path] = ()):
        n = len(list(tmp_path.glob("master-*.toml")))
        self.config = tmp_path / f"master-{n}.toml"
        self.config.write_text(cfg_text)
        self.log_path = tmp_path / f"master-{n}.log"
        env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
        paths = [str(REPO), *map(str, pythonpath), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobpool.cli", "start", "-c", str(self.config)],
                cwd=SUPPORT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exits(self) -> list[tuple[str, int, str]]:
        """(slot, pid, reason) of every worker exit the master logged."""
        return [(s, int(p), r) for s, p, r in _EXIT_LINE.findall(self.log())]

    def title(self) -> str:
        try:
            return _title(psutil.Process(self.pid))
        except psutil.Error:
            return ""

    def workers(self, queue: str | None = None) -> dict[int, str]:
        """pid -> title of the master's live worker children, of `queue` if given."""
        try:
            children = psutil.Process(self.pid).children()
        except psutil.Error:
            return {}
        found = {}
        for child in children:
            with contextlib.suppress(psutil.Error):
                title = _title(child)
                if title.startswith("jobpool: worker ") and (
                    queue is None or slot_of(title).rpartition(".")[0] == queue
                ):
                    found[child.pid] = title
        return found

    def wait_workers(
        self,
        count: int,
        queue: str | None = None,
        gone: Iterable[int] = (),
        timeout: float = 15.0,
    ) -> dict[int, str]:
        """Wait until exactly `count` workers (of `queue`) run, none of them in `gone`."""
        gone = set(gone)

        def settled() -> dict[int, str] | None:
            self.assert_running()
            now = self.workers(queue)
            return now if len(now) == count and not gone & set(now) else None

        try:
            return wait_until(settled, timeout, 0.05, f"{count} {queue or ''} workers")
        except AssertionError:
            raise AssertionError(
                f"wanted {count} {queue or ''} workers (not {sorted(gone)}), have "
                f"{self.workers(queue)}; log:\n{self.log()}"
            ) from None

    def wait_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        try:
            return wait_until(lambda: re.search(pattern, self.log()), timeout, 0.05, pattern)
        except AssertionError:
            raise AssertionError(f"no {pattern!r} in the log:\n{self.log()}") from None

    def assert_running(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"master exited {self.proc.returncode}; log:\n{self.log()}")

    def send(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"master still running after {timeout}s; log:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """Stop the master at once (SIGQUIT: it exits normally, so coverage of it is saved),
        then SIGKILL every process it left: its group, and each worker's own group."""
        family = []
        with contextlib.suppress(psutil.Error):
            family = psutil.Process(self.pid).children(recursive=True)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        for proc in family:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[Callable[..., Master]]:
    """`master(cfg_text, workers=N)` starts `jobpool start` and waits for N worker children."""
    started: list[Master] = []

    def start(cfg_text: str, workers: int, pythonpath: Iterable[Path] = ()) -> Master:
        m = Master(tmp_path, cfg_text, pythonpath)
        started.append(m)
        if workers:
            m.wait_workers(workers)
        return m

    yield start
    for m in started:
        m.kill()
