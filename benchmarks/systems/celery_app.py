"""Celery: tasks and producer.

Workers: celery -A benchmarks.systems.celery_app worker -c 2 -P prefork (G: -c 16 -P threads).

No result backend (the tasks ignore results); acks early (Celery's default).
"""

from __future__ import annotations

import datetime as dt
import os

from celery import Celery

from benchmarks import body

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(ignore_result=True)
def incr() -> None:
    body.incr()


@app.task(ignore_result=True)
def latency(pushed_at: float) -> None:
    body.picked_up(pushed_at)


@app.task(ignore_result=True)
def delayed(due: float) -> None:
    body.ran_at_due(due)


@app.task(ignore_result=True)
def io(seconds: float) -> None:
    body.io_wait(seconds)


class Client:
    def push_incr(self) -> None:
        incr.delay()

    def push_incr_bulk(self, n: int) -> bool:
        return False

    def push_latency(self, pushed_at: float) -> None:
        latency.delay(pushed_at)

    def push_at(self, due: float) -> None:
        delayed.apply_async((due,), eta=dt.datetime.fromtimestamp(due, dt.timezone.utc))

    def push_io(self, seconds: float) -> None:
        io.delay(seconds)


if __name__ == "__main__":
    from benchmarks import producer
    from benchmarks.systems import celery_app

    producer.run(celery_app.Client())
