"""The producer side of every system: the same push loops, timed the same way.

`python -m benchmarks.systems.NAME COMMAND ARGS` runs one of these with NAME's client and prints one
JSON line. Commands:

    single N        push N tiny jobs one call at a time; {"seconds": ...}
    bulk N          push N tiny jobs with the system's bulk API; {"seconds": ...} ({} if none)
    latency N RATE  push N jobs at RATE per second, each carrying the time of its push
    delayed N       push N jobs due evenly over now+2 s .. now+4 s, each carrying its due time
    io N SECONDS    push N I/O-bound jobs (workload G), each waiting SECONDS before its INCR
"""

from __future__ import annotations

import json
import sys
import time
from typing import Protocol

BULK_CHUNK = 1000  # jobs per bulk call, for every system that has a bulk API


class Client(Protocol):
    def push_incr(self) -> None: ...
    def push_incr_bulk(self, n: int) -> bool: ...  # False: the system has no bulk API
    def push_latency(self, pushed_at: float) -> None: ...
    def push_at(self, due: float) -> None: ...
    def push_io(self, seconds: float) -> None: ...


def _timed(step, n: int) -> float:
    started = time.perf_counter()
    step(n)
    return time.perf_counter() - started


def _single(client: Client, n: int) -> None:
    for _ in range(n):
        client.push_incr()


def _latency(client: Client, n: int, rate: float) -> None:
    interval, next_at = 1.0 / rate, time.perf_counter()
    for _ in range(n):
        client.push_latency(time.time())
        next_at += interval
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)


def _delayed(client: Client, n: int) -> float:
    base = time.time()
    for i in range(n):
        client.push_at(base + 2.0 + 2.0 * i / max(n - 1, 1))
    return time.time() - base


def run(client: Client, argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command, n = argv[0], int(argv[1])
    out: dict[str, object] = {"command": command, "n": n}
    if command == "single":
        out["seconds"] = _timed(lambda k: _single(client, k), n)
    elif command == "bulk":
        started = time.perf_counter()
        if client.push_incr_bulk(n):
            out["seconds"] = time.perf_counter() - started
    elif command == "latency":
        _latency(client, n, float(argv[2]))
    elif command == "delayed":
        out["push_seconds"] = _delayed(client, n)
    elif command == "io":
        seconds = float(argv[2])
        out["seconds"] = _timed(lambda k: [client.push_io(seconds) for _ in range(k)], n)
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(out), flush=True)


def chunks(n: int, size: int = BULK_CHUNK):
    """Sizes of the bulk calls that push n jobs."""
    while n > 0:
        yield min(size, n)
        n -= size
