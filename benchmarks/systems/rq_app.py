"""RQ: job functions and producer. Workers: `rq worker` (fork per job, or SimpleWorker).

Defaults otherwise: RQ keeps each job's result and record (500 s).
"""

from __future__ import annotations

import datetime as dt
import os

import redis
from rq import Queue

from benchmarks import body, producer


def incr() -> None:
    body.incr()


def latency(pushed_at: float) -> None:
    body.picked_up(pushed_at)


def delayed(due: float) -> None:
    body.ran_at_due(due)


def io(seconds: float) -> None:
    body.io_wait(seconds)


class Client:
    def __init__(self) -> None:
        self.q = Queue("default", connection=redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]))

    def push_incr(self) -> None:
        self.q.enqueue(incr)

    def push_incr_bulk(self, n: int) -> bool:
        for size in producer.chunks(n):
            self.q.enqueue_many([Queue.prepare_data(incr) for _ in range(size)])
        return True

    def push_latency(self, pushed_at: float) -> None:
        self.q.enqueue(latency, pushed_at)

    def push_at(self, due: float) -> None:
        self.q.enqueue_at(dt.datetime.fromtimestamp(due, dt.timezone.utc), delayed, due)

    def push_io(self, seconds: float) -> None:
        self.q.enqueue(io, seconds)


if __name__ == "__main__":
    from benchmarks.systems import rq_app

    producer.run(rq_app.Client())
