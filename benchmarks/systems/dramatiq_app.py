"""Dramatiq: actors and producer. Workers: dramatiq benchmarks.systems.dramatiq_app --processes 2
--threads 1 (G: --threads 16). Defaults otherwise (no Results middleware)."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks import body

dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"]))


@dramatiq.actor
def incr() -> None:
    body.incr()


@dramatiq.actor
def latency(pushed_at: float) -> None:
    body.picked_up(pushed_at)


@dramatiq.actor
def delayed(due: float) -> None:
    body.ran_at_due(due)


@dramatiq.actor
def io(seconds: float) -> None:
    body.io_wait(seconds)


class Client:
    def push_incr(self) -> None:
        incr.send()

    def push_incr_bulk(self, n: int) -> bool:
        return False

    def push_latency(self, pushed_at: float) -> None:
        latency.send(pushed_at)

    def push_at(self, due: float) -> None:
        # Dramatiq takes a delay in whole ms; rounding up keeps "due" a lower bound.
        delay_ms = max(int((due - time.time()) * 1000) + 1, 0)
        delayed.send_with_options(args=(due,), delay=delay_ms)

    def push_io(self, seconds: float) -> None:
        io.send(seconds)


if __name__ == "__main__":
    from benchmarks import producer
    from benchmarks.systems import dramatiq_app

    producer.run(dramatiq_app.Client())
