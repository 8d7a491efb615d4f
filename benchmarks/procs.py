"""Worker processes the benchmark starts: each in its own session, stopped by its group; and
their memory (USS: what a process owns alone; RSS: also the pages it shares)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

MB = 1024 * 1024
FORK_SERVER = "jobpool: fork server"  # jobpool's pool has it beside the workers: not a worker


def title(proc: psutil.Process) -> str:
    """What `ps` shows (jobpool sets its titles in argv)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def pool_children(top: psutil.Process) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(workers, helpers): a pool master's children, its fork server apart."""
    children = top.children()
    helpers = [c for c in children if title(c).startswith(FORK_SERVER)]
    return [c for c in children if c not in helpers], helpers


class Group:
    """The processes of one system's worker pool.

    `layout` says which processes run the jobs: "pool" = a master whose children do (jobpool,
    Celery, Huey, Dramatiq), "flat" = each started process does (raw, RQ, arq).
    """

    def __init__(
        self, argvs: list[list[str]], layout: str, env: dict[str, str], cwd: Path, log: Path
    ):
        self.layout = layout
        self.procs: list[subprocess.Popen] = []
        with open(log, "ab") as out:
            for argv in argvs:
                proc = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
                self.procs.append(proc)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def memory(self) -> dict[str, list[float]]:
        """{"worker_uss": [...], "worker_rss": [...], "master_rss": [...]} in MB."""
        out: dict[str, list[float]] = {"worker_uss": [], "worker_rss": [], "master_rss": []}
        for proc in self.procs:
            try:
                top = psutil.Process(proc.pid)
                workers = pool_children(top)[0] if self.layout == "pool" else [top]
                if self.layout == "pool":
                    out["master_rss"].append(top.memory_info().rss / MB)
                for worker in workers:
                    info = worker.memory_full_info()
                    out["worker_uss"].append(info.uss / MB)
                    out["worker_rss"].append(info.rss / MB)
            except psutil.NoSuchProcess:
                continue
        return out

    def tree_memory(self) -> dict[str, float]:
        """Workload G: {"uss": ..., "rss": ..., "procs": n}, the USS and the RSS (MB) added up
        over every process started and all their descendants (masters included). The RSS sum
        counts each shared page once per process that maps it; the USS sum counts none twice."""
        uss = rss = 0.0
        count = 0
        for proc in self.procs:
            try:
                top = psutil.Process(proc.pid)
                tree = [top, *top.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for each in tree:
                try:
                    info = each.memory_full_info()
                except psutil.NoSuchProcess:
                    continue
                uss, rss, count = uss + info.uss / MB, rss + info.rss / MB, count + 1
        return {"uss": uss, "rss": rss, "procs": count}

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to each group (a drain, for those that have one), SIGKILL what is left."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(deadline - time.monotonic(), 0.1))
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
