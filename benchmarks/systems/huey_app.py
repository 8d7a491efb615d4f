"""Huey: tasks and producer.

Workers: huey_consumer benchmarks.systems.huey_app.huey -w 2 -k process (G: -w 16 -k thread).

Defaults otherwise: results are stored, but these tasks return None, which Huey does not store.
"""

from __future__ import annotations

import datetime as dt
import os

from huey import RedisHuey

from benchmarks import body

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])


@huey.task()
def incr() -> None:
    body.incr()


@huey.task()
def latency(pushed_at: float) -> None:
    body.picked_up(pushed_at)


@huey.task()
def delayed(due: float) -> None:
    body.ran_at_due(due)


@huey.task()
def io(seconds: float) -> None:
    body.io_wait(seconds)


class Client:
    def push_incr(self) -> None:
        incr()

    def push_incr_bulk(self, n: int) -> bool:
        return False

    def push_latency(self, pushed_at: float) -> None:
        latency(pushed_at)

    def push_at(self, due: float) -> None:
        delayed.schedule(args=(due,), eta=dt.datetime.fromtimestamp(due, dt.timezone.utc))

    def push_io(self, seconds: float) -> None:
        io(seconds)


if __name__ == "__main__":
    from benchmarks import producer
    from benchmarks.systems import huey_app

    producer.run(huey_app.Client())
