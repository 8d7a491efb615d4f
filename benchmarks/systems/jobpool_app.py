"""jobpool: the jobs `jobpool start` runs (its config `imports` this module) and the producer.

The config file is $BENCH_JOBPOOL_CONFIG, written by the benchmark for each run. `incr` is
IncrJob's body as a `@job` function, which system `jobpool-fn` (benchmarks.systems.jobpool_fn_app)
pushes instead of the class.
"""

from __future__ import annotations

import os
import time

from benchmarks import body, producer
from jobpool import Job, QueueManager, job


class IncrJob(Job, name="bench.incr"):
    def handle(self) -> None:
        body.incr()


@job  # registered as benchmarks.systems.jobpool_app:incr, the default name
def incr() -> None:
    body.incr()


class LatencyJob(Job, name="bench.latency"):
    def __init__(self, pushed_at: float):
        self.pushed_at = pushed_at

    def handle(self) -> None:
        body.picked_up(self.pushed_at)


class DelayedJob(Job, name="bench.delayed"):
    def __init__(self, due: float):
        self.due = due

    def handle(self) -> None:
        body.ran_at_due(self.due)


class IoJob(Job, name="bench.io"):
    """Workload G: wait `seconds` (a slow service), then one INCR."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def handle(self) -> None:
        body.io_wait(self.seconds)


class PayloadJob(Job, name="bench.payload"):
    """Workload F: a tiny job carrying `data` of a chosen size."""

    def __init__(self, data: str):
        self.data = data

    def handle(self) -> None:
        body.incr()


class Client:
    def __init__(self) -> None:
        self.qm = QueueManager.from_config(os.environ["BENCH_JOBPOOL_CONFIG"])

    def push_incr(self) -> None:
        self.qm.push(IncrJob())

    def push_incr_bulk(self, n: int) -> bool:
        for size in producer.chunks(n):
            self.qm.push_many([IncrJob() for _ in range(size)])
        return True

    def push_latency(self, pushed_at: float) -> None:
        self.qm.push(LatencyJob(pushed_at))

    def push_at(self, due: float) -> None:
        self.qm.later(DelayedJob(due), max(due - time.time(), 0.0))

    def push_io(self, seconds: float) -> None:
        self.qm.push(IoJob(seconds))


if __name__ == "__main__":
    from benchmarks.systems import jobpool_app  # the importable module, whose classes workers know

    producer.run(jobpool_app.Client())
