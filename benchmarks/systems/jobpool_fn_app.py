"""jobpool-fn: jobpool's producer, pushing the tiny job of workload A as the `@job` function
`jobpool_app.incr` (`incr.push()`, `incr.push_many()`) instead of the Job class `IncrJob`.

The workers are the same `jobpool start` with the same config, which imports jobpool_app; only
workload A runs this system (see benchmarks.targets).
"""

from __future__ import annotations

from benchmarks import producer
from benchmarks.systems import jobpool_app


class Client(jobpool_app.Client):
    def push_incr(self) -> None:
        jobpool_app.incr.push(manager=self.qm)

    def push_incr_bulk(self, n: int) -> bool:
        for size in producer.chunks(n):
            jobpool_app.incr.push_many([() for _ in range(size)], manager=self.qm)
        return True


if __name__ == "__main__":
    producer.run(Client())
