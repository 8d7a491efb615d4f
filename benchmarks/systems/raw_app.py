"""The floor: the least a reliable queue can do per job, in plain redis-py.

Producer: RPUSH (bulk: pipelines of RPUSH). Worker (`python -m benchmarks.systems.raw_app worker`):
BLMOVE the next message from the ready list to this process's processing list, then run the job
body and LREM the message from the processing list in one pipelined round trip. No status, no
retries, no delayed jobs (workload C does not apply).
"""

from __future__ import annotations

import os
import sys
import time

from benchmarks import body, producer

READY = "bench:raw:ready"


def worker() -> None:
    r = body.client()
    processing = f"bench:raw:processing:{os.getpid()}"
    pipe = r.pipeline(transaction=False)
    while True:
        message = r.blmove(READY, processing, 1, "LEFT", "RIGHT")
        if message is None:
            continue
        if message.startswith(b"incr "):
            pipe.incr(body.COUNTER)
        else:  # b"latency ID PUSHED_AT"
            pipe.rpush(body.LATENCY, time.time() - float(message.rsplit(b" ", 1)[1]))
        pipe.lrem(processing, 1, message)
        pipe.execute()


class Client:
    def __init__(self) -> None:
        self.r = body.client()
        self.seq = 0
        self.tag = os.getpid()

    def _message(self, kind: str, extra: str = "") -> str:
        self.seq += 1  # unique messages, so that LREM removes exactly this one
        return f"{kind} {self.tag}.{self.seq}{extra}"

    def push_incr(self) -> None:
        self.r.rpush(READY, self._message("incr"))

    def push_incr_bulk(self, n: int) -> bool:
        pipe = self.r.pipeline(transaction=False)
        for size in producer.chunks(n):
            for _ in range(size):
                pipe.rpush(READY, self._message("incr"))
            pipe.execute()
        return True

    def push_latency(self, pushed_at: float) -> None:
        self.r.rpush(READY, self._message("latency", f" {pushed_at!r}"))

    def push_at(self, due: float) -> None:
        raise NotImplementedError("the raw floor has no delayed jobs")

    def push_io(self, seconds: float) -> None:
        raise NotImplementedError("the raw floor runs no I/O-bound jobs (workload G)")


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        worker()
    else:
        producer.run(Client())
