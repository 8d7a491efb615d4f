"""Prometheus metrics, served by the master when `[metrics] listen` is set.

Counts are made in the master from what its children report over their pipes (job finished,
outcome, duration), so they survive worker restarts and need no shared files. Live figures
(workers by state, their RSS, queue depth, the oldest waiting job) are read when Prometheus
scrapes, from a snapshot the master loop publishes: the HTTP thread never touches the loop's own
structures. A scrape never fails for Redis: the queue figures are left out while it cannot be
read, and the master's log says why, once.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psutil
import redis

from jobpool.drivers.redis.client import CONNECTION_ERRORS

log = logging.getLogger("jobpool.metrics")
OUTCOME_LABELS = {
    "completed": "completed",
    "retrying": "retried",
    "failed": "failed",
    "lost": "lost",
    "cancelled": "cancelled",
}
WORKER_STATES = ("starting", "idle", "busy", "draining")
QUEUE_STATES = ("ready", "delayed", "in_flight", "failed")
RESTART_REASONS = ("crash", "memory", "max_jobs", "timeout", "cancel")  # restarts.describe_exit
REDIS_ERRORS = (redis.RedisError, *CONNECTION_ERRORS)
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

        _no_created_series()
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
        self._labelled: set[str] = set()
        self.registry.register(_LiveCollector(self))
        self._server: Any = None

    def start(self) -> None:
        from prometheus_client import start_http_server

        self._label_queues(self.queues())
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
        self._label_queues({queue for queue, _, _, _ in self.workers})

    def _label_queues(self, queues: Iterable[str]) -> None:
        """Give each queue its restart counters at 0 from the start: a series that appears
        with its first increment hides that increment from rate() and increase()."""
        for queue in set(queues) - self._labelled:
            for reason in RESTART_REASONS:
                self.restarts.labels(queue, reason)
            self._labelled.add(queue)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _LiveCollector:
    """Figures computed at scrape time."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self._failing: set[str] = set()  # the kinds of Redis error logged since the last success

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
        yield from self._queue_figures(queues, GaugeMetricFamily)

    def _queue_figures(self, queues: list[str], family: Any) -> Iterator[Any]:
        depth = family(
            "jobpool_queue_jobs", "Jobs in each queue, by state.", labels=["queue", "state"]
        )
        oldest = family(
            "jobpool_queue_oldest_age_seconds",
            "How long the oldest waiting job of each queue has waited (0 when none waits).",
            labels=["queue"],
        )
        read = [(queue, self._stats(queue)) for queue in queues]
        for queue, stats in read:
            if stats is None:
                continue
            for state in QUEUE_STATES:
                depth.add_metric([queue, state], stats[state])
            oldest.add_metric([queue], stats["oldest_waiting_age"] or 0.0)
        if all(stats is not None for _, stats in read):
            self._failing.clear()  # a whole scrape read well: log the next error again
        yield depth
        yield oldest

    def _stats(self, queue: str) -> dict[str, Any] | None:
        """The driver's stats() of a queue, or None when Redis fails to answer: any Redis
        error, not only a lost connection (a full or read-only server, a key of the wrong
        type), must leave the rest of the scrape intact. Each kind of error is logged once,
        and again only after a scrape that read every queue, so that an outage does not
        flood the log at every scrape."""
        try:
            stats: dict[str, Any] = self.metrics.driver.stats(queue)
        except REDIS_ERRORS as exc:
            kind = type(exc).__name__
            if kind not in self._failing:
                self._failing.add(kind)
                log.warning("metrics: cannot read queue %s from Redis (%s: %s)", queue, kind, exc)
            return None
        return stats


def _no_created_series() -> None:
    """Leave out the `_created` series prometheus-client adds beside every counter and
    histogram: one more series per label set, that nobody graphs. The switch is process-wide,
    which suits the master, the one process that serves metrics; clients before 0.20 lack it."""
    import prometheus_client

    disable = getattr(prometheus_client, "disable_created_metrics", None)
    if disable is not None:
        disable()


def make_metrics(
    address: tuple[str, int] | None, driver: Any, queues: Callable[[], list[str]]
) -> NullMetrics:
    """The endpoint of `[metrics] listen`, or a stand-in that does nothing. prometheus-client
    is only imported when metrics are on."""
    return NullMetrics() if address is None else Metrics(address, driver, queues)
