"""The master process of `jobpool start`: forks the pool, keeps it healthy, drains it.

The loop, top to bottom: wait for a signal, a child's report or the next deadline; handle the
signals; read reports; reap dead children (requeueing their jobs at once); renew the leases of
live ones; enforce timeouts, memory limits and cancels (enforcer.py); start what is missing
(forked by the fork server, fork_server.py). Shutdown leaves the loop through `Stop`, and every
path out ends in `_halt()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time

from jobpool import exitcodes
from jobpool.config import Config, ConfigError, load_config
from jobpool.drivers.base import Driver, Requeued
from jobpool.drivers.redis.history import recorder_for
from jobpool.process import set_title
from jobpool.schedules.resolve import templates_for
from jobpool.schedules.runner import ScheduleRunner
from jobpool.supervisor.board import Board, Running
from jobpool.supervisor.cancels import CancelWatch
from jobpool.supervisor.children import Child, Slot, spawn, spawn_by
from jobpool.supervisor.dashboard_process import DashboardProcess
from jobpool.supervisor.enforcer import Enforcer, kill, send
from jobpool.supervisor.fork_server import ForkServer, ForkServerGone
from jobpool.supervisor.handback import Handback
from jobpool.supervisor.metrics import make_metrics
from jobpool.supervisor.plan import PoolPlan
from jobpool.supervisor.registry import registry_for, workers_of
from jobpool.supervisor.restarts import KillReason, RestartPolicy, describe_exit
from jobpool.supervisor.signals import SignalQueue
from jobpool.supervisor.systemd import Notifier

log = logging.getLogger("jobpool.supervisor")
PIPE_GRACE = 1.0  # seconds a child may live on after its report pipe closed, while exiting
TICK = 1.0  # longest sleep of an idle master; everything periodic runs at most this late
EXIT_REASON_LOG = {"stopped": logging.INFO, "max_jobs": logging.INFO}
RESTARTS_SHOWN = 5  # a slot's last restarts, with their reasons, in the host registry


class Stop(Exception):
    """Leave the loop; `immediate` skips the rest of the drain."""

    def __init__(self, immediate: bool = False):
        super().__init__("immediate" if immediate else "drained")
        self.immediate = immediate


class Supervisor:
    def __init__(
        self, config: Config, config_path: str, driver: Driver, *, preloaded: bool = False
    ):
        if config.driver != "redis":
            raise ConfigError([f'{config.source}: driver: jobpool start needs driver = "redis"'])
        self.config = config
        self.config_path = config_path
        self.preloaded = preloaded
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.children: dict[int, Child] = {}
        self.plan = PoolPlan(config)
        self.draining_since: float | None = None
        self.restarts = RestartPolicy(config.pool.restart_backoff_max)
        self.signals = SignalQueue()
        self.forks = ForkServer()  # forks the workers: see fork_server.py
        self.handback = Handback(driver)
        self.enforcer = Enforcer(CancelWatch(driver))  # timeouts, limits, cancels: kills
        self.slot_restarts: dict[str, list[tuple[float, str]]] = {}  # slot -> (when, why)
        self.spawned = 0
        self.stats = {"restarts": 0, "completed": 0, "failed": 0, "retrying": 0}
        self.notify = Notifier()
        self._ready_sent = False
        self.metrics = make_metrics(config.metrics.address, driver, self.queue_names)
        self.driver = driver
        self.history = recorder_for(driver)  # the dashboard's charts: drivers/redis/history.py
        self.dashboard = DashboardProcess(config_path, config.dashboard.listen)
        self.schedules = ScheduleRunner(driver)  # pushes each tick's job: see schedules/runner.py
        self.schedules.replace(config.schedules, templates_for(config, config_path, preloaded))
        # The host registry: this master's heartbeat in Redis (supervisor/registry.py).
        address = config.redis.safe_url()
        self.registry = registry_for(driver, config_path, self.host, self.pid, address)

    def queue_names(self) -> list[str]:
        return list(self.plan.queues())

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        self.metrics.start()
        self.signals.install()
        log.info("master %d starting: %s", self.pid, self.plan.describe())
        if self.config.schedules:
            log.info("schedules: %s", ", ".join(self.config.schedules))
        try:
            while True:
                self._step()
        except Stop as stop:
            return self._halt(stop.immediate)

    def _step(self) -> None:
        now = time.monotonic()
        report_fds = [c.report_fd for c in self.children.values() if c.report_closed is None]
        received, readable = self.signals.wait(self._sleep_time(now), report_fds)
        for signum in received:
            self._on_signal(signum)
        self._read_reports(readable)
        self._reap()
        now = time.monotonic()
        self._warn_closed_pipes(now)
        self._retry_pending()
        self._renew_leases(now)
        self.enforcer.enforce(self.config, self.children.values(), now)
        self.enforcer.stop_cancelled(self.children.values(), now)
        self.schedules.run_due(time.time())
        self.history.flush(now)
        self._beat(now)
        if self.draining_since is None:
            self._reconcile(now)
            self.dashboard.start_if_due(now)
        elif not self.children:
            raise Stop()
        self._report(now)

    def _sleep_time(self, now: float) -> float:
        deadlines = [
            now + TICK,
            self.handback.next_renewal,
            self.notify.next_deadline() or now + TICK,
        ]
        if self.draining_since is None:
            deadlines.append(self.restarts.next_start(now) or now + TICK)
        deadlines.append(self.history.next_flush() or now + TICK)
        deadlines.append(self.dashboard.next_deadline() or now + TICK)
        schedule_due = self.schedules.next_due()  # unix time, as ticks are
        if schedule_due is not None:
            deadlines.append(now + schedule_due - time.time())
        deadlines += self.enforcer.deadlines(self.config, self.children.values())
        return max(min(deadlines) - now, 0.0)

    # -- signals -------------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            if self.draining_since is not None:
                log.warning("second %s: stopping now", signal.Signals(signum).name)
                raise Stop(immediate=True)
            self._drain(signal.Signals(signum).name)
        elif signum == signal.SIGQUIT:
            log.warning("SIGQUIT: stopping now")
            raise Stop(immediate=True)
        elif signum == signal.SIGHUP:
            self._reload()
        elif signum == signal.SIGTTIN:
            self.plan.grow()
            log.info("SIGTTIN: %s", self.plan.describe())
        elif signum == signal.SIGTTOU:
            self.plan.shrink()
            log.info("SIGTTOU: %s", self.plan.describe())

    def _drain(self, why: str) -> None:
        self.draining_since = time.monotonic()
        self.notify.stopping(f"draining {len(self.children)} worker(s) after {why}")
        log.info(
            "%s: draining %d worker(s); each finishes its job and exits", why, len(self.children)
        )
        for child in self.children.values():
            self._stop_child(child)

    def _reload(self) -> None:
        self.notify.reloading()
        self._ready_sent = False  # READY=1 again once the new pool is up
        try:
            new = load_config(self.config_path)
            if new.driver != "redis":
                raise ConfigError([f'{new.source}: driver: jobpool start needs driver = "redis"'])
        except ConfigError as exc:
            log.error(
                "SIGHUP: %s is invalid, keeping the running config:\n%s", self.config_path, exc
            )
            return
        for section in ("redis", "metrics", "dashboard"):
            if getattr(new, section) != getattr(self.config, section):
                log.error(
                    "SIGHUP: [%s] changed: restart jobpool to apply; keeping the running config",
                    section,
                )
                return
        try:
            templates = templates_for(new, self.config_path, self.preloaded)
        except ConfigError as exc:
            log.error(
                "SIGHUP: the schedules of %s do not resolve, keeping the running config:\n%s",
                self.config_path,
                exc,
            )
            return
        changed = self.schedules.replace(new.schedules, templates)
        if changed or new.schedules != self.config.schedules:
            log.info(
                "SIGHUP: schedules: %s (new or changed: %s)",
                ", ".join(new.schedules) or "none",
                ", ".join(changed) or "none",
            )
        removed = self.plan.reload(new)
        self.config = new
        log.info(
            "SIGHUP: reloaded %s (removed: %s): %s",
            self.config_path,
            ", ".join(removed) or "none",
            self.plan.describe(),
        )

    # -- children ------------------------------------------------------------------------------

    def _read_reports(self, readable: list[int]) -> None:
        for child in self.children.values():
            if child.report_fd in readable:
                # End of file: the child exited, or a job closed its descriptors. Stop watching
                # the pipe, or select() would report it readable forever.
                if not child.read_reports():
                    child.report_closed = time.monotonic()
                self._count_finished(child)

    def _warn_closed_pipes(self, now: float) -> None:
        """A child still alive a while after its pipe closed lost it to a job (a child that
        exits closes it too, a moment before it can be reaped)."""
        for child in self.children.values():
            closed = child.report_closed
            if closed is not None and now - closed > PIPE_GRACE and not child.report_lost:
                child.report_lost = True
                log.warning(
                    "worker %s (pid %d) closed its report pipe (a job closed its descriptors); "
                    "its job counts no longer reach the metrics until it is replaced",
                    child.slot.name,
                    child.pid,
                )

    def _count_finished(self, child: Child) -> None:
        for done in child.finished:
            queue = done.queue or child.slot.queue
            self.metrics.job_finished(queue, done.job_class, done.outcome, done.seconds)
            self.history.add(queue, done.job_class, done.outcome, done.seconds)
        child.finished.clear()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if child is not None:
                self._on_exit(child, code)
            elif not self.forks.reaped(pid, code):
                self.dashboard.reaped(pid, code, time.monotonic())

    def _on_exit(self, child: Child, code: int) -> None:
        child.read_reports()
        self._count_finished(child)
        running = child.running
        child.close()
        now = time.monotonic()
        ended = describe_exit(
            code,
            killed=child.killed,
            asked_to_stop=child.draining_since is not None,
            shutting_down=self.draining_since is not None,
        )
        for outcome, n in child.outcomes.items():
            self.stats[outcome] = self.stats.get(outcome, 0) + n
        failed = self._requeue(
            child.slot.queue, child.worker_id, ended.detail, ended.count_attempt, running
        )
        delay = self.restarts.exited(
            (child.slot.queue, child.slot.index), now - child.started, ended.crash, now
        )
        if self.draining_since is None and ended.reason != "stopped":
            self.stats["restarts"] += 1
            history = self.slot_restarts.setdefault(child.slot.name, [])
            history[:] = [*history[-(RESTARTS_SHOWN - 1) :], (time.time(), ended.reason)]
            self.metrics.worker_exited(child.slot.queue, ended.reason)
        level = EXIT_REASON_LOG.get(ended.reason, logging.WARNING)
        jobs = []
        for busy in running:
            fate = (
                "failed for good: its attempts are used up" if busy.job_id in failed else "requeued"
            )
            if child.killed is not None and child.killed.reason is KillReason.CANCEL:
                fate = "cancelled"  # requeue.lua recorded it so: it was asked to stop
                self.metrics.job_finished(
                    child.slot.queue, busy.job_class, fate, now - busy.started
                )
                self.history.add(child.slot.queue, busy.job_class, fate, now - busy.started)
            jobs.append(f"; job {busy.job_id} {fate}")
        job = "".join(jobs)
        backoff = f"; restarting in {delay:g}s" if delay and self.draining_since is None else ""
        log.log(
            level,
            "worker %s exited: pid %d, reason %s (%s) after %.1fs%s%s",
            child.slot.name,
            child.pid,
            ended.reason,
            ended.detail,
            now - child.started,
            job,
            backoff,
        )

    def _requeue(
        self,
        queue: str,
        worker_id: str,
        reason: str,
        count_attempt: bool,
        running: list[Running] | None = None,
    ) -> set[str]:
        """Hand a dead worker's jobs back at once, from every queue it served: no waiting for
        its lease to lapse. Returns the ids of the jobs that its death failed for good."""
        failed: set[str] = set()
        for served in self.config.queue(queue).served:
            requeued = self.handback.requeue(served, worker_id, reason, count_attempt)
            if requeued is not None:
                failed |= self._count_deaths(served, requeued, running)
        return failed

    def _count_deaths(
        self, queue: str, requeued: Requeued, running: list[Running] | None
    ) -> set[str]:
        """Count the jobs that worker deaths failed for good: no worker reports them."""
        now = time.monotonic()
        started = {job.job_id: job.started for job in running or ()}
        for job_id, job_class in requeued.failed:
            took = now - started[job_id] if job_id in started else 0.0
            self.metrics.job_finished(queue, job_class, "failed", took)
            self.history.add(queue, job_class, "failed", took)
            self.stats["failed"] += 1
        return {job_id for job_id, _ in requeued.failed}

    def _retry_pending(self) -> None:
        for queue, requeued in self.handback.retry_pending():
            self._count_deaths(queue, requeued, None)

    def _renew_leases(self, now: float) -> None:
        by_queue: dict[str, list[str]] = {}
        for child in self.children.values():
            for queue in self.config.queue(child.slot.queue).served:
                by_queue.setdefault(queue, []).append(child.worker_id)
        self.handback.renew(
            now, {q: (ids, self.config.queue(q).lease) for q, ids in by_queue.items()}
        )

    def _stop_child(self, child: Child) -> None:
        if child.draining_since is None:
            child.draining_since = time.monotonic()
            send(child.pid, signal.SIGTERM)

    def _reconcile(self, now: float) -> None:
        wanted = self.plan.wanted()
        live = {c.slot for c in self.children.values() if c.draining_since is None}
        for child in self.children.values():
            if child.slot not in wanted:
                self._stop_child(child)
        for slot in sorted(wanted - live, key=lambda s: (s.queue, s.index)):
            if self.restarts.may_start((slot.queue, slot.index), now):
                self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        self.spawned += 1
        worker_id = f"{self.host}.{self.pid}.{slot.name}.{self.spawned}"
        pid, report_fd, board = self._fork(slot, worker_id)
        self.children[pid] = Child(pid, slot, worker_id, report_fd, time.monotonic(), board)
        log.info("worker %s started: pid %d", slot.name, pid)

    def _fork(self, slot: Slot, worker_id: str) -> tuple[int, int, Board]:
        """Fork a worker: by the fork server, or by the master itself without one."""
        fds = [c.report_fd for c in self.children.values()]
        if self.forks.ready(self.config, self.pid, self.preloaded, [*fds, *self.signals.fds]):
            with contextlib.suppress(ForkServerGone):
                return spawn_by(self.forks, self.config, slot, worker_id)
        board = Board(self.config.queue(slot.queue).concurrency)
        pid, report_fd = spawn(
            self.config, slot, worker_id, self.pid, self.preloaded, fds, self.signals, board
        )
        return pid, report_fd, board

    # -- shutdown ------------------------------------------------------------------------------

    def _halt(self, immediate: bool) -> int:
        if immediate:
            self.notify.stopping("stopping at once")
            for child in self.children.values():
                if child.killed is None:
                    kill(child, KillReason.SHUTDOWN, "shutdown: stopped at once")
            for pid in list(self.children):
                try:
                    _, status = os.waitpid(pid, 0)
                except ChildProcessError:
                    status = 0
                self._on_exit(self.children.pop(pid), os.waitstatus_to_exitcode(status))
        self._retry_pending()
        if self.handback.pending:
            log.error(
                "%d dead worker(s) still hold jobs; they return to the queue when their "
                "leases lapse",
                len(self.handback.pending),
            )
        self.history.flush(time.monotonic(), force=True)
        if self.registry is not None:
            self.registry.remove()
        self.dashboard.stop()
        self.forks.stop()
        self.signals.close()
        self.metrics.close()
        log.info("master %d stopped", self.pid)
        return exitcodes.OK

    # -- presentation --------------------------------------------------------------------------

    def _beat(self, now: float) -> None:
        """This master's entry in the host registry, every few seconds."""
        if self.registry is not None:
            state = "running" if self.draining_since is None else "draining"
            workers = workers_of(self.children.values(), now, self.slot_restarts)
            self.registry.beat(now, self.queue_names(), workers, state)

    def _report(self, now: float) -> None:
        """Process title, and for systemd: READY once every wanted worker took up work, live
        counts in STATUS, and the watchdog ping."""
        set_title(f"jobpool: master -c {self.config_path} [{len(self.children)} workers]")
        self.metrics.publish(
            [(c.slot.queue, c.slot.name, c.pid, c.state) for c in self.children.values()]
        )
        if not self.notify.enabled:
            return
        if self.draining_since is not None:  # the drain's STATUS stays until the master exits
            self.notify.watchdog(now)
            return
        status = self.status_line()
        if not self._ready_sent and self._pool_is_up():
            self._ready_sent = True
            self.notify.ready(status)
        else:
            self.notify.status(status)
        self.notify.watchdog(now)

    def _pool_is_up(self) -> bool:
        up = {c.slot for c in self.children.values() if c.ready and c.draining_since is None}
        return self.plan.wanted() <= up

    def status_line(self) -> str:
        """Live counts, for systemd's STATUS= (and `systemctl status`)."""
        busy = sum(1 for c in self.children.values() if c.busy)
        done = dict(self.stats)
        for child in self.children.values():
            for outcome, n in child.outcomes.items():
                done[outcome] = done.get(outcome, 0) + n
        return (
            f"{len(self.children)} workers ({busy} busy, {len(self.children) - busy} idle); "
            f"jobs {done.get('completed', 0)} completed, {done.get('failed', 0)} failed, "
            f"{done.get('retrying', 0)} retried; {done['restarts']} restarts"
        )
