"""A worker with job threads caps glibc's malloc arenas: its threads allocate under the GIL, so
an arena per thread only holds memory (see jobpool.process.limit_malloc_arenas)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# 16 threads that each allocate (bytes of 2 KB are malloc's, not Python's small-object
# allocator's), then glibc's malloc_stats() on stderr: one "Arena N:" block per arena.
PROBE = """
import ctypes, sys, threading
from jobpool.process import limit_malloc_arenas
if sys.argv[1] == "limit":
    assert limit_malloc_arenas(2)
start = threading.Barrier(16)
def allocate():
    start.wait()
    kept = [bytes(2048) for _ in range(200)]
threads = [threading.Thread(target=allocate) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.count("Arena ")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_process_whose_arenas_are_limited_uses_at_most_that_many():
    assert arenas("limit") <= 2
    assert arenas("default") > 2  # what the limit saves: an arena for most threads


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch):
    from jobpool.process import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False
