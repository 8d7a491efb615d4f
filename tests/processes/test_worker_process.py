"""The standalone `jobpool worker` as a real process: jobs, signals, leases, reconnects, exit codes
and titles, proven through files, statuses, pids and exit codes against the session's redis-server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import REPO, SUPPORT, RedisServer, blocked_in, wait_until
from jobs import HoldGIL, KillSelf, Overlap, Record, Sleep, SlowFirst, hold_gil, runs, windows

from jobpool import QueueManager, exitcodes

QUEUE = "procs"
# The environment variables the config loader reads would silently override the test's TOML.
_CONFIG_ENV = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "JOBPOOL_PREFIX")


class Workers:
    """Starts `jobpool worker` processes with a tiny TOML, and kills whatever is left at the end."""

    def __init__(self, tmp_path: Path, redis_url: str):
        self.tmp_path = tmp_path
        self.redis_url = redis_url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.others: list[psutil.Process] = []  # their children the test looked at (keepers)
        self._stderr: dict[int, Path] = {}  # pid -> the file its stderr goes to

    def config(self, body: str | None = None, lease: float = 1, url: str | None = None) -> Path:
        """A config file: `body` as given, or the usual one on `url` (default: the test server)."""
        if body is None:
            body = (
                f'driver = "redis"\nimports = ["jobs"]\n'
                f'[redis]\nurl = "{url or self.redis_url}"\n[pool]\nlease = {lease}\n'
            )
        path = self.tmp_path / f"jobpool-{len(list(self.tmp_path.glob('jobpool-*')))}.toml"
        path.write_text(body)
        return path

    def start(
        self,
        config: Path | None = None,
        queue: str = QUEUE,
        redis_wait: float = 30,
        extra: tuple[str, ...] = (),
    ) -> subprocess.Popen[bytes]:
        config = config or self.config()
        env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        log = self.tmp_path / f"worker-{len(self.procs)}.err"
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jobpool.cli",
                    "worker",
                    queue,
                    "-c",
                    str(config),
                    "--redis-wait",
                    str(redis_wait),
                    *extra,
                ],
                cwd=SUPPORT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self._stderr[proc.pid] = log
        self.procs.append(proc)
        return proc

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        return self._stderr[proc.pid].read_text(errors="replace")

    def wait_exit(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {proc.pid} still running after {timeout}s; stderr:\n{self.stderr(proc)}"
            ) from None

    def kill_all(self) -> None:
        """SIGKILL every worker this test started, and their children (lease keepers), by pid."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.others += psutil.Process(proc.pid).children(recursive=True)
                proc.kill()
            proc.wait(timeout=10)
        for other in self.others:  # e.g. a lease keeper that failed to follow its worker out
            with contextlib.suppress(psutil.NoSuchProcess):
                if not gone(other.pid):
                    other.kill()


@pytest.fixture
def workers(tmp_path: Path, redis_url: str) -> Iterator[Workers]:
    pool = Workers(tmp_path, redis_url)
    try:
        yield pool
    finally:
        pool.kill_all()


def status(qm: QueueManager, job_id: str) -> dict:
    return qm.get_job_status(job_id) or {}


def wait_status(qm: QueueManager, job_id: str, want: str, timeout: float = 10.0) -> dict:
    try:
        wait_until(lambda: status(qm, job_id).get("status") == want, timeout, message=want)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {job_id} is now {status(qm, job_id)}") from None
    return status(qm, job_id)


def lines(path: Path, prefix: str) -> list[str]:
    return [line for line in runs(path) if line.startswith(prefix)]


def title(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline()).strip()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def lease_keeper(workers: Workers, worker_pid: int) -> psutil.Process:
    """The worker's forked lease-keeper child (titled ``jobpool: lease keeper QUEUE``); the
    fixture kills it at the end if it is still there."""

    def find() -> psutil.Process | None:
        for child in psutil.Process(worker_pid).children():
            if "lease keeper" in title(child.pid):
                return child
        return None

    keeper = wait_until(find, 5, message=f"the lease keeper child of worker {worker_pid}")
    workers.others.append(keeper)
    return keeper


def restart_dead(workers: Workers, procs: list[subprocess.Popen[bytes]]) -> None:
    for i, proc in enumerate(procs):
        if proc.poll() is not None:
            procs[i] = workers.start()


# -- jobs ----------------------------------------------------------------------------------------


def test_pushed_jobs_are_completed_by_the_worker_process(workers, redis_qm, tmp_path):
    worker = workers.start()
    ids = [redis_qm.push(Record(str(tmp_path / f"out{i}"), f"job{i}"), QUEUE) for i in range(3)]
    for i, job_id in enumerate(ids):
        record = wait_status(redis_qm, job_id, "completed")
        assert record["attempts"] == 1
        assert runs(tmp_path / f"out{i}") == [f"job{i}"]
    assert worker.poll() is None, workers.stderr(worker)


def test_concurrency_option_runs_jobs_at_once_and_a_drain_finishes_them(
    workers, redis_qm, tmp_path
):
    worker = workers.start(extra=("--concurrency", "4"))
    path = tmp_path / "windows"
    ids = redis_qm.push_many([Overlap(str(path), 1.0) for _ in range(4)], QUEUE)
    wait_until(lambda: len(lines(path, "start:")) == 4, 10, message="4 jobs running at once")
    assert "busy 4/4" in title(worker.pid)
    worker.send_signal(signal.SIGTERM)
    assert workers.wait_exit(worker) == 0, workers.stderr(worker)
    assert [status(redis_qm, i)["status"] for i in ids] == ["completed"] * 4
    rows = windows(path)
    assert max(r[2] for r in rows) < min(r[3] for r in rows)


# -- signals -------------------------------------------------------------------------------------


def test_sigterm_finishes_the_running_job_exits_0_and_leaves_the_queued_one(
    workers, redis_qm, tmp_path
):
    worker = workers.start()
    running = redis_qm.push(Sleep(str(tmp_path / "sleep"), 2), QUEUE)
    wait_until(lambda: lines(tmp_path / "sleep", "start:"), 10, message="the Sleep job to start")
    waiting = redis_qm.push(Record(str(tmp_path / "record")), QUEUE)
    worker.send_signal(signal.SIGTERM)

    assert workers.wait_exit(worker) == 0, workers.stderr(worker)
    assert lines(tmp_path / "sleep", "done:") == [f"done:{worker.pid}"]
    assert status(redis_qm, running)["status"] == "completed"
    left = status(redis_qm, waiting)
    assert left["status"] == "queued" and left["attempts"] == 0
    assert runs(tmp_path / "record") == []


def test_sigint_finishes_the_running_job_and_exits_0(workers, redis_qm, tmp_path):
    worker = workers.start()
    running = redis_qm.push(Sleep(str(tmp_path / "sleep"), 1), QUEUE)
    wait_until(lambda: lines(tmp_path / "sleep", "start:"), 10, message="the Sleep job to start")
    waiting = redis_qm.push(Record(str(tmp_path / "record")), QUEUE)
    worker.send_signal(signal.SIGINT)

    assert workers.wait_exit(worker) == 0, workers.stderr(worker)
    assert lines(tmp_path / "sleep", "done:") == [f"done:{worker.pid}"]
    assert status(redis_qm, running)["status"] == "completed"
    assert status(redis_qm, waiting)["status"] == "queued"


def test_sigterm_while_idle_exits_0_promptly(workers, redis_qm, tmp_path):
    worker = workers.start()
    job_id = redis_qm.push(Record(str(tmp_path / "out")), QUEUE)
    wait_status(redis_qm, job_id, "completed")
    worker.send_signal(signal.SIGTERM)
    assert workers.wait_exit(worker, timeout=5) == 0, workers.stderr(worker)


def sigterm_twice_during_a_long_job(
    workers: Workers, qm: QueueManager, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], str]:
    worker = workers.start()
    job_id = qm.push(Sleep(str(tmp_path / "sleep"), 30), QUEUE)
    wait_until(lambda: lines(tmp_path / "sleep", "start:"), 10, message="the Sleep job to start")
    assert status(qm, job_id)["attempts"] == 1
    worker.send_signal(signal.SIGTERM)
    # Standard signals do not queue: two sent back to back may arrive as one. Give the worker a
    # moment to handle the first before the second: a fixed pause, since the first only sets a
    # flag that nothing outside the process can see.
    time.sleep(0.5)
    worker.send_signal(signal.SIGTERM)
    workers.wait_exit(worker, timeout=10)  # long before the 30 s job could end
    return worker, job_id


def test_second_sigterm_stops_at_once_and_hands_the_job_back_uncounted(workers, redis_qm, tmp_path):
    _, job_id = sigterm_twice_during_a_long_job(workers, redis_qm, tmp_path)
    assert lines(tmp_path / "sleep", "done:") == []
    record = status(redis_qm, job_id)
    assert record["status"] == "queued" and record["attempts"] == 0, record


def test_second_sigterm_exit_is_not_reported_as_a_crash(workers, redis_qm, tmp_path):
    worker, _ = sigterm_twice_during_a_long_job(workers, redis_qm, tmp_path)
    assert "Traceback" not in workers.stderr(worker)
    assert worker.returncode == exitcodes.OK


# -- leases --------------------------------------------------------------------------------------


def test_sigkilled_worker_job_is_redelivered_and_its_lease_keeper_dies(workers, redis_qm, tmp_path):
    path = tmp_path / "slow"
    first = workers.start()
    job_id = redis_qm.push(SlowFirst(str(path), first=30, then=0.1), QUEUE)
    wait_until(lambda: lines(path, "start:"), 10, message="the job to start")
    keeper = lease_keeper(workers, first.pid)
    first.kill()
    first.wait(timeout=10)
    wait_until(lambda: gone(keeper.pid), 5, message=f"lease keeper {keeper.pid} to exit")

    second = workers.start()
    record = wait_status(redis_qm, job_id, "completed", timeout=15)
    assert record["attempts"] == 2
    assert "worker lost" in record["error"] and "lease" in record["error"], record
    assert lines(path, "start:") == [f"start:{first.pid}", f"start:{second.pid}"]
    assert lines(path, "done:") == [f"done:{second.pid}"]


def test_hold_gil_job_really_starves_other_threads():
    """The premise of the next test: HoldGIL's call lets no other thread of its process run."""
    ticks, stop = [], threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    thread = threading.Thread(target=tick)
    thread.start()
    try:
        wait_until(lambda: len(ticks) > 3, 5)
        before = len(ticks)
        hold_gil(0.5)
        during = len(ticks) - before
    finally:
        stop.set()
        thread.join()
    # Unstarved, the thread would tick about 100 times; a tick already past its sleep, and
    # one that got the GIL between the count and the call on a loaded machine, may slip in.
    assert during <= 2


def test_lease_keeper_keeps_a_gil_holding_job_leased(workers, redis_qm, tmp_path):
    path = tmp_path / "gil"
    busy = workers.start()
    wait_until(lambda: title(busy.pid).endswith("idle"), 10, message="the first worker to be up")
    idle = workers.start()  # would take the job over if the running worker's lease lapsed
    wait_until(lambda: title(idle.pid).endswith("idle"), 10, message="the second worker to be up")
    job_id = redis_qm.push(HoldGIL(str(path), 3), QUEUE)

    record = wait_status(redis_qm, job_id, "completed", timeout=15)
    assert record["attempts"] == 1 and "error" not in record, record
    assert len(lines(path, "start:")) == 1
    assert len(lines(path, "done:")) == 1
    assert busy.poll() is None and idle.poll() is None


def test_poison_job_fails_once_with_worker_lost_and_workers_keep_working(
    workers, redis_qm, tmp_path
):
    path = tmp_path / "poison"
    procs = [workers.start(), workers.start()]
    job_id = redis_qm.push(KillSelf(str(path)), QUEUE)

    def failed_with_hook() -> bool:
        restart_dead(workers, procs)
        record = status(redis_qm, job_id)
        return record.get("status") == "failed" and not record.get("hook")

    wait_until(failed_with_hook, 25, interval=0.1, message="the poison job to fail for good")
    record = status(redis_qm, job_id)
    assert record["attempts"] == 2
    assert "worker lost" in record["error"], record
    assert len(lines(path, "start:")) == 2

    after = redis_qm.push(Record(str(tmp_path / "after")), QUEUE)

    def after_done() -> bool:
        restart_dead(workers, procs)
        return status(redis_qm, after).get("status") == "completed"

    wait_until(after_done, 15, interval=0.1, message="a normal job after the poison one")
    assert runs(tmp_path / "after") == ["ran"]
    hooks = lines(path, "failed:")
    assert len(hooks) == 1 and hooks[0].startswith("failed:WorkerLostError:worker"), hooks
    assert len(lines(path, "start:")) == 2


# -- reconnects ----------------------------------------------------------------------------------


def test_idle_worker_consumes_again_after_a_redis_restart(workers, redis_server, tmp_path):
    worker = workers.start()
    wait_until(lambda: blocked_in(redis_server), 10, message="the worker to wait for jobs")
    redis_server.restart()

    with QueueManager(redis_server.url) as fresh:
        job_id = fresh.push(Record(str(tmp_path / "out")), QUEUE)
        wait_status(fresh, job_id, "completed", timeout=10)
    assert runs(tmp_path / "out") == ["ran"]
    assert worker.poll() is None, workers.stderr(worker)


def test_worker_survives_a_redis_restart_during_a_job(workers, redis_qm, redis_server, tmp_path):
    worker = workers.start()
    redis_qm.push(Sleep(str(tmp_path / "sleep"), 1.5), QUEUE)
    wait_until(lambda: lines(tmp_path / "sleep", "start:"), 10, message="the Sleep job to start")
    redis_server.restart()
    wait_until(lambda: lines(tmp_path / "sleep", "done:"), 10, message="the Sleep job to end")

    with QueueManager(redis_server.url) as fresh:
        job_id = fresh.push(Record(str(tmp_path / "next")), QUEUE)
        wait_status(fresh, job_id, "completed", timeout=10)
    assert runs(tmp_path / "next") == ["ran"]
    assert worker.poll() is None, workers.stderr(worker)


# -- exit codes ----------------------------------------------------------------------------------


def test_bad_config_exits_2_naming_the_key(workers):
    config = workers.config(f'[redis]\nurl = "{workers.redis_url}"\n[pool]\nworkers = 0\n')
    worker = workers.start(config)
    assert workers.wait_exit(worker) == 2
    assert f"{config}: pool.workers: must be an integer >= 1" in workers.stderr(worker)


def test_unimportable_job_module_exits_4_naming_it(workers):
    config = workers.config(f'imports = ["no_such_module"]\n[redis]\nurl = "{workers.redis_url}"\n')
    worker = workers.start(config)
    assert workers.wait_exit(worker) == 4
    assert "cannot import job module 'no_such_module'" in workers.stderr(worker)


def retries_logged(workers: Workers, proc: subprocess.Popen[bytes]) -> int:
    return workers.stderr(proc).count("cannot reach Redis")


def test_worker_keeps_retrying_an_unreachable_redis_until_it_answers(workers, tmp_path):
    server = RedisServer(tmp_path / "late")  # picks a free port; not started yet
    server.workdir.mkdir()
    try:
        worker = workers.start(workers.config(url=server.tcp_url))
        wait_until(lambda: retries_logged(workers, worker) >= 3, 15, message="retries")
        assert worker.poll() is None, workers.stderr(worker)
        server.start()
        with QueueManager(server.tcp_url) as late:
            job_id = late.push(Record(str(tmp_path / "out")), QUEUE)
            wait_status(late, job_id, "completed", timeout=15)
        assert worker.poll() is None, workers.stderr(worker)
    finally:
        server.stop()


@pytest.mark.timing
def test_unreachable_redis_exits_3_after_retrying(workers):
    worker = workers.start(workers.config(url="redis://127.0.0.1:1/0"), redis_wait=3)
    assert workers.wait_exit(worker, timeout=60) == 3
    err = workers.stderr(worker)
    assert retries_logged(workers, worker) >= 4, err  # a warning per retry, then the error
    assert "127.0.0.1:1" in err


# -- process titles ------------------------------------------------------------------------------


def test_process_title_shows_idle_then_busy_with_the_job(workers, redis_qm, tmp_path):
    worker = workers.start()
    idle = f"jobpool: worker {QUEUE} idle"
    wait_until(lambda: title(worker.pid) == idle, 10, message=f"title {idle!r}")
    job_id = redis_qm.push(Sleep(str(tmp_path / "sleep"), 2), QUEUE)
    busy = f"jobpool: worker {QUEUE} busy Sleep {job_id}"
    wait_until(lambda: title(worker.pid) == busy, 10, message=f"title {busy!r}")
    wait_status(redis_qm, job_id, "completed")
    wait_until(lambda: title(worker.pid) == idle, 5, message=f"title {idle!r} again")
