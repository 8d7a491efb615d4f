"""Bad input at every door, each with a clear error and nothing lost: broken config files for
`jobpool start`, a queue `jobpool worker` does not know, an unreachable Redis, garbage planted in
a queue's keys (never executed), oversized payloads, and jobs that raise SystemExit or
KeyboardInterrupt or whose failed() hook raises, under real worker processes.

Config parsing itself is unit-tested in test_config.py and `jobpool check` in test_cli.py; these
tests prove what the processes do with it.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, SUPPORT, wait_until
from jobs import HookRaises, RaiseOnce, Record, runs

from jobpool import QueueManager
from jobpool.errors import PayloadTooLargeError
from jobpool.ids import new_job_id

QUEUE = "bad"
_ENV = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD", "REDIS_USERNAME")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV and k != "JOBPOOL_PREFIX"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def jobpool(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobpool.cli", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=SUPPORT,
        timeout=timeout,
    )


class WorkerProc:
    """A `jobpool worker` process whose stderr goes to a file."""

    def __init__(self, tmp_path: Path, config: Path, queue: str = QUEUE):
        self.err = tmp_path / f"worker-{queue}.err"
        with open(self.err, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobpool.cli", "worker", queue, "-c", str(config)],
                cwd=SUPPORT,
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.pid = self.proc.pid

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"worker exited {self.proc.returncode}:\n{self.stderr()}"

    def stop(self) -> None:
        """SIGTERM (a clean exit, which also lets coverage save), then SIGKILL if need be."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def config(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "jobpool.toml"
    path.write_text(f'imports = ["jobs"]\n[redis]\nurl = "{redis_url}"\n[pool]\nlease = 2\n')
    return path


@pytest.fixture
def worker(tmp_path: Path, config: Path) -> Iterator[WorkerProc]:
    proc = WorkerProc(tmp_path, config)
    yield proc
    proc.stop()


def status(qm: QueueManager, job_id: str) -> dict:
    return qm.get_job_status(job_id) or {}


def wait_status(qm: QueueManager, job_id: str, want: str, timeout: float = 10.0) -> dict:
    wait_until(
        lambda: status(qm, job_id).get("status") == want,
        timeout,
        0.02,
        f"{job_id} to be {want} (now {status(qm, job_id)})",
    )
    return status(qm, job_id)


def prove_worker_lives(worker: WorkerProc, qm: QueueManager, tmp_path: Path) -> None:
    """The same worker process goes on to complete a normal job."""
    job_id = qm.push(Record(str(tmp_path / "after")), QUEUE)
    wait_status(qm, job_id, "completed")
    assert runs(tmp_path / "after") == ["ran"]
    worker.assert_alive()


# -- config files --------------------------------------------------------------------------------

BAD_CONFIGS = {
    "malformed_toml": ("[pool\nworkers = 2\n", "line 1, column 6: invalid TOML"),
    "unknown_key": ("[pool]\nworkrs = 2\n", "unknown key 'pool.workrs' (did you mean 'workers'?)"),
    "wrong_type": ('[pool]\nlease = "soon"\n', "pool.lease: must be a duration"),
    "zero_workers": ("[pool]\nworkers = 0\n", "pool.workers: must be an integer >= 1, got 0"),
    "negative_workers": (
        "[queues.mail]\nworkers = -2\n",
        "queues.mail.workers: must be an integer >= 1, got -2",
    ),
    "nonsense_memory_limit": (
        '[pool]\nmemory_limit = "a lot"\n',
        "pool.memory_limit: must be a size",
    ),
    "memory_driver": ('driver = "memory"\n', 'driver: jobpool start needs driver = "redis"'),
}


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_start_refuses_a_bad_config_with_exit_2_and_the_queued_job_waits(
    redis_qm, redis_url, tmp_path, text, expected
):
    job_id = redis_qm.push(Record(str(tmp_path / "out")))
    path = tmp_path / "bad.toml"
    path.write_text(f'{text}[redis]\nurl = "{redis_url}"\n')
    result = jobpool("start", "-c", str(path))
    assert result.returncode == 2, result.stderr
    assert f"{path}: {expected}" in result.stderr
    assert "Traceback" not in result.stderr
    record = status(redis_qm, job_id)
    assert record["status"] == "queued" and record["attempts"] == 0


def test_worker_refuses_a_queue_not_listed_in_queues_naming_the_listed_ones(config, redis_url):
    config.write_text(
        f'imports = ["jobs"]\n[redis]\nurl = "{redis_url}"\n'
        "[queues.emails]\nworkers = 1\n[queues.reports]\nworkers = 1\n"
    )
    refused = jobpool("worker", "emials", "-c", str(config), "--burst")
    assert refused.returncode == 2, refused.stderr
    assert (
        f"jobpool worker: unknown queue 'emials': {config} lists only emails, reports under "
        "[queues] (and the default queue 'default')" in refused.stderr
    )
    for listed in ("emails", "default"):
        served = jobpool("worker", listed, "-c", str(config), "--burst", "--redis-wait", "2")
        assert served.returncode == 0, served.stderr


@pytest.mark.timing
def test_start_retries_an_unreachable_redis_with_backoff_then_exits_3(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text('[redis]\nurl = "redis://127.0.0.1:1/0"\n')
    started = time.monotonic()
    result = jobpool("start", "-c", str(path), "--redis-wait", "2")
    took = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    retries = result.stderr.count("cannot reach Redis at redis://127.0.0.1:1/0 (")
    assert retries >= 3, result.stderr  # a warning per retry with backoff
    assert "jobpool start: cannot reach Redis at redis://127.0.0.1:1/0:" in result.stderr
    assert 2 <= took < 15
    assert "Traceback" not in result.stderr


# -- garbage in Redis ----------------------------------------------------------------------------


class _Boom:
    """Unpickling this runs os.system(...): proof, by its marker file, of an unpickle."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _garbage(kind: str, marker: Path) -> bytes:
    touch = f"touch {marker}"
    return {
        "not_json": b'{"job": "jobs:Record", "attrs": {"path": "/tm',
        "not_a_job_class": json.dumps(
            {"job": "jobs:runs", "attrs": {"path": str(marker)}}
        ).encode(),
        "os_system": json.dumps({"job": "os:system", "attrs": {"command": touch}}).encode(),
        "pickle": pickle.dumps(_Boom(touch)),
    }[kind]


ERRORS = {
    "not_json": "JobDecodeError: payload is not valid JSON",
    "not_a_job_class": "UnknownJobError: unknown job class 'jobs:runs'",
    "os_system": "UnknownJobError: unknown job class 'os:system'",
    "pickle": "JobDecodeError: payload is not valid JSON",
}


@pytest.mark.parametrize("kind", ERRORS)
def test_garbage_planted_in_a_queue_fails_that_job_runs_nothing_and_the_worker_lives(
    worker, redis_qm, redis_client, tmp_path, kind
):
    marker = tmp_path / "executed"
    keys = redis_qm.driver.keys(QUEUE)
    job_id = new_job_id(QUEUE)
    now = int(time.time() * 1000)
    record = {"job": "Planted", "queue": QUEUE, "max_tries": 3, "status": "queued"}
    record.update(attempts=0, created_at=now, updated_at=now)
    with redis_client.pipeline() as pipe:  # what anyone who can write to Redis could do
        pipe.hset(keys.state, job_id, json.dumps(record))
        pipe.hset(keys.payload, job_id, _garbage(kind, marker))
        pipe.rpush(keys.ready, job_id)
        pipe.execute()

    failed = wait_status(redis_qm, job_id, "failed")
    assert failed["error"].startswith(ERRORS[kind]), failed
    assert failed["attempts"] == 1  # failed at once: retrying garbage cannot help
    assert not marker.exists()
    assert f"job cannot run: {ERRORS[kind].split(': ', 1)[1]}" in worker.stderr()
    prove_worker_lives(worker, redis_qm, tmp_path)
    assert not marker.exists()


# -- payload size --------------------------------------------------------------------------------


def test_payload_above_the_configured_max_payload_is_refused_and_nothing_is_stored(
    config, redis_client, tmp_path
):
    config.write_text(config.read_text() + '[jobs]\nmax_payload = "1KiB"\n')
    with QueueManager.from_config(config) as qm:
        small, big = Record(str(tmp_path / "a")), Record(str(tmp_path / "b"), "x" * 2000)
        with pytest.raises(PayloadTooLargeError, match=r"above max_payload \(1024 bytes\)"):
            qm.push(big)
        with pytest.raises(PayloadTooLargeError):
            qm.push_many([small, big])  # checked before anything is sent
        assert redis_client.dbsize() == 0
        assert qm.counts() == {"ready": 0, "delayed": 0, "in_flight": 0, "failed": 0}
        qm.push(small)
        assert redis_client.dbsize() > 0


# -- jobs that raise what a worker must not die of -----------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"), [("exit", "SystemExit: 3"), ("interrupt", "KeyboardInterrupt: ")]
)
def test_systemexit_or_keyboardinterrupt_in_handle_costs_an_attempt_not_the_worker(
    worker, redis_qm, tmp_path, kind, error
):
    path = tmp_path / "runs"
    job_id = redis_qm.push(RaiseOnce(str(path), kind), QUEUE)
    record = wait_status(redis_qm, job_id, "completed")
    assert record["attempts"] == 2
    assert runs(path) == [f"run:{worker.pid}", f"run:{worker.pid}"]  # one process throughout
    assert "attempt 1/2 failed after" in worker.stderr() and f"({error}" in worker.stderr()
    prove_worker_lives(worker, redis_qm, tmp_path)


def test_failed_hook_that_raises_is_logged_and_the_worker_lives(worker, redis_qm, tmp_path):
    path = tmp_path / "runs"
    job_id = redis_qm.push(HookRaises(str(path)), QUEUE)
    record = wait_status(redis_qm, job_id, "failed")
    assert record["error"] == "ValueError: handle broke"
    wait_until(lambda: "the failed() hook broke too" in worker.stderr(), 5, 0.02, "the log line")
    assert "the job's failed() hook raised" in worker.stderr()
    assert runs(path) == [f"run:{worker.pid}", f"hook:{worker.pid}"]
    prove_worker_lives(worker, redis_qm, tmp_path)
