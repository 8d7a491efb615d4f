"""Prometheus metrics, served by the master when `[metrics] listen` is set.

Counts are made in the master from what its children report over their pipes (job finished,
outcome, duration), so they survive worker restarts and need no shared files. Live figures
(workers by state, their RSS, queue depth) are read when Prometheus scrapes, from a snapshot the
master loop publishes: the HTTP thread never touches the loop's own structures.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psutil

from jobpool.connection import CONNECTION_ERRORS

log = logging.getLogger("jobpool.metrics")
OUTCOME_LABELS = {
    "completed": "completed",
    "retrying": "retried",
    "failed": "failed",
    "lost": "lost",
}
WORKER_STATES = ("starting", "idle", "busy", "draining")
QUEUE_STATES = ("ready", "delayed", "in_flight", "failed")
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class MetricsError(Exception):
    """The metrics endpoint cannot start (the address is taken, say)."""


class NullMetrics:
    """What the master calls when metrics are off: nothing, at no cost."""

    def start(self) -> None: ...
    def job_finished(self, queue: str, job_class: str, outcome: str, duration: float) -> None: ...
    def worker_exited(self, queue: str, reason: str) -> None: ...
    def publish(self, workers: Sequence[tuple[str, str, int, str]]) -> None: ...
    def close(self) -> None: ...


class Metrics(NullMetrics):
    def __init__(self, address: tuple[str, int], driver: Any, queues: Callable[[], list[str]]):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.address = address
        self.driver = driver
        self.queues = queues
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "jobpool_jobs",
            "Jobs finished, by queue, class and outcome.",
            ["queue", "job_class", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "jobpool_job_duration_seconds",
            "Time jobs took to run.",
            ["queue"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.restarts = Counter(
            "jobpool_worker_restarts",
            "Worker replacements, by reason.",
            ["queue", "reason"],
            registry=self.registry,
        )
        self.workers: tuple[tuple[str, str, int, str], ...] = ()
        self.registry.register(_LiveCollector(self))
        self._server: Any = None

    def start(self) -> None:
        from prometheus_client import start_http_server

        host, port = self.address
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(
                f'[metrics] listen = "{host}:{port}": cannot serve metrics there '
                f"({exc.strerror or exc}); is another process using the port?"
            ) from None
        log.info("metrics on http://%s:%d/metrics", host, port)

    def job_finished(self, queue: str, job_class: str, outcome: str, duration: float) -> None:
        self.jobs.labels(queue, job_class, OUTCOME_LABELS.get(outcome, outcome)).inc()
        self.duration.labels(queue).observe(duration)

    def worker_exited(self, queue: str, reason: str) -> None:
        self.restarts.labels(queue, reason).inc()

    def publish(self, workers: Sequence[tuple[str, str, int, str]]) -> None:
        """(queue, slot, pid, state) of every worker; replaced whole, read by the scraper."""
        self.workers = tuple(workers)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _LiveCollector:
    """Figures computed at scrape time."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        workers = self.metrics.workers
        queues = sorted(set(self.metrics.queues()) | {w[0] for w in workers})
        states = collections.Counter((queue, state) for queue, _, _, state in workers)
        by_state = GaugeMetricFamily(
            "jobpool_workers", "Worker processes, by queue and state.", labels=["queue", "state"]
        )
        for queue in queues:
            for state in WORKER_STATES:
                by_state.add_metric([queue, state], states[(queue, state)])
        yield by_state
        rss = GaugeMetricFamily(
            "jobpool_worker_rss_bytes",
            "Resident memory of each worker.",
            labels=["queue", "worker"],
        )
        for queue, slot, pid, _ in workers:
            with contextlib.suppress(psutil.Error):  # it may have exited since the snapshot
                rss.add_metric([queue, slot], psutil.Process(pid).memory_info().rss)
        yield rss
        yield self._depth(queues, GaugeMetricFamily)

    def _depth(self, queues: list[str], family: Any) -> Any:
        depth = family(
            "jobpool_queue_jobs", "Jobs in each queue, by state.", labels=["queue", "state"]
        )
        for queue in queues:
            try:
                counts = self.metrics.driver.counts(queue)
            except CONNECTION_ERRORS as exc:
                log.warning("metrics: cannot read queue %s (%s)", queue, exc)
                continue
            for state in QUEUE_STATES:
                depth.add_metric([queue, state], counts[state])
        return depth


def make_metrics(
    address: tuple[str, int] | None, driver: Any, queues: Callable[[], list[str]]
) -> NullMetrics:
    """The endpoint of `[metrics] listen`, or a stand-in that does nothing. prometheus-client
    is only imported when metrics are on."""
    return NullMetrics() if address is None else Metrics(address, driver, queues)
