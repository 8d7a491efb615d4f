"""The `jobpool` command's non-worker subcommands, run as real processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, SUPPORT, free_port
from jobs import Fail, Record

import jobpool as jobpool_package
from jobpool import QueueManager, Worker


def jobpool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "QUEUE_DRIVER"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "jobpool.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or SUPPORT,
        timeout=60,
    )


@pytest.fixture
def cfg(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "jobpool.toml"
    path.write_text(f'imports = ["jobs"]\n[redis]\nurl = "{redis_url}"\n')
    return path


def test_check_accepts_the_example_config():
    result = jobpool("check", "-c", str(REPO / "etc" / "jobpool.toml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_lists_every_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[pool]\nworkers = 0\nmemory_limit = "lots"\n[queues.emails]\nworkrs = 2\n')
    result = jobpool("check", "-c", str(bad))
    assert result.returncode == 2
    assert "pool.workers" in result.stderr and "pool.memory_limit" in result.stderr
    assert "unknown key 'queues.emails.workrs'" in result.stderr
    assert str(bad) in result.stderr


def test_check_names_the_line_of_a_toml_syntax_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('driver = "redis"\n[pool\nworkers = 1\n')
    result = jobpool("check", "-c", str(bad))
    assert result.returncode == 2 and "line 2" in result.stderr


def test_check_missing_file(tmp_path):
    result = jobpool("check", "-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 2 and "nope.toml" in result.stderr


def test_status_prints_the_record_as_json(cfg, redis_url, tmp_path):
    job_id = QueueManager(redis_url).push(Record(str(tmp_path / "out")))
    result = jobpool("status", job_id, "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "queued" and record["id"] == job_id


def test_status_of_an_unknown_job_exits_1(cfg):
    result = jobpool("status", "default:nope", "-c", str(cfg))
    assert result.returncode == 1 and "no job" in result.stderr


def test_failed_list_retry_delete(cfg, redis_url, tmp_path):
    qm = QueueManager(redis_url)
    ids = []
    for _ in range(2):
        job = Fail(str(tmp_path / "out"))
        job.max_tries = 1
        ids.append(qm.push(job))
        Worker(qm).process(qm.pop())
    listed = jobpool("failed", "list", "-c", str(cfg))
    assert listed.returncode == 0 and all(i in listed.stdout for i in ids)
    assert "RuntimeError: boom" in listed.stdout
    retried = jobpool("failed", "retry", ids[0], "-c", str(cfg))
    assert "1 job(s) queued again" in retried.stdout
    assert qm.get_job_status(ids[0])["status"] == "queued"
    deleted = jobpool("failed", "delete", "--all", "-q", "default", "-c", str(cfg))
    assert "1 job(s) deleted" in deleted.stdout
    assert qm.get_job_status(ids[1]) is None


def test_redis_unreachable_for_status_exits_3_without_the_password(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text('[redis]\nurl = "redis://:s3cret-pw@127.0.0.1:1/0"\n')
    result = jobpool("status", "default:x", "-c", str(path))
    assert result.returncode == 3
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_embedded_start_status_stop(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text('[redis]\nurl = "embedded"\ndata_dir = "data"\n')
    try:
        started = jobpool("embedded", "start", "-c", str(path))
        assert started.returncode == 0 and started.stdout.startswith("started")
        assert re.search(r"^server: (Valkey|Redis) \d+\.\d+\.\d+ \(/\S+\)$", started.stdout, re.M)
        status = jobpool("embedded", "status", "-c", str(path))
        assert status.returncode == 0 and status.stdout.startswith("running")
        assert started.stdout.splitlines()[1] == status.stdout.splitlines()[1]  # server: ...
        job_id = QueueManager.from_config(path).push(Record(str(tmp_path / "out")))
        assert jobpool("status", job_id, "-c", str(path)).returncode == 0
    finally:
        stopped = jobpool("embedded", "stop", "-c", str(path))
    assert stopped.stdout.strip() == "stopped"
    after = jobpool("embedded", "status", "-c", str(path))
    assert after.returncode == 1 and after.stdout.startswith("not running")
    would = r"^would start: (Valkey|Redis) \d+\.\d+\.\d+ \(\S+: /\S+\)$"
    assert re.search(would, after.stdout, re.M), after.stdout
    # Redis 7 and Valkey keep a multi-part AOF in appendonlydir/ (Redis 6.2 kept appendonly.aof).
    assert any((tmp_path / "data" / "appendonlydir").glob("*.aof"))


ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def _fail(qm: QueueManager, path: Path, queue: str = "default") -> str:
    """A Fail job pushed to `queue` and run once: failed for good, its payload kept."""
    job = Fail(str(path))
    job.max_tries = 1
    job_id = qm.push(job, queue)
    Worker(qm, queue).process(qm.pop(queue))
    return job_id


@pytest.fixture
def two_queues(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "two.toml"
    path.write_text(
        f'imports = ["jobs"]\n[redis]\nurl = "{redis_url}"\n'
        "[queues.default]\nworkers = 1\n[queues.emails]\nworkers = 1\n"
    )
    return path


def test_version():
    result = jobpool("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"jobpool {jobpool_package.__version__}" == "jobpool 0.1.0"


def test_check_imports_the_job_modules_and_names_the_one_that_fails(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text('imports = ["jobs", "jobz_typo"]\n')
    result = jobpool("check", "-c", str(path))
    assert result.returncode == 2, result.stdout
    assert "'jobz_typo'" in result.stderr and "Traceback" not in result.stderr


def test_check_prints_the_queues_start_would_serve(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text('imports = ["jobs"]\n')
    result = jobpool("check", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert "queues: default x1" in result.stdout


def test_check_warns_of_a_job_class_whose_queue_has_no_workers(tmp_path):
    (tmp_path / "routed_jobs.py").write_text(
        "from jobpool import Job\n\n"
        "class Report(Job):\n    queue = 'reports'\n\n"
        "class Mail(Job):\n    queue = 'emails'\n"
    )
    path = tmp_path / "jobpool.toml"
    path.write_text('imports = ["routed_jobs"]\n[queues.emails]\nworkers = 1\n')
    result = jobpool("check", "-c", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "routed_jobs:Report" in result.stderr and "'reports'" in result.stderr
    assert "Mail" not in result.stderr
    assert "queues: emails x1" in result.stdout


def test_stats_with_the_memory_driver_is_a_clear_error(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text('driver = "memory"\n')
    result = jobpool("stats", "-c", str(path))
    assert result.returncode == 2
    assert "redis driver" in result.stderr and "one process" in result.stderr
    assert "Traceback" not in result.stderr


def test_failed_list_covers_every_configured_queue_with_a_header(two_queues, redis_url, tmp_path):
    qm = QueueManager(redis_url)
    ids = [_fail(qm, tmp_path / "a"), _fail(qm, tmp_path / "b", "emails")]
    listed = jobpool("failed", "list", "-c", str(two_queues))
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:2] == ["id", "job"] and "failed at" in header
    assert [row.split()[0] for row in rows] == ids
    for row in rows:
        assert re.search(ISO_TIME, row), row
        assert "path='" in row and "RuntimeError: boom" in row
    narrowed = jobpool("failed", "list", "-q", "emails", "-c", str(two_queues))
    assert [row.split()[0] for row in narrowed.stdout.splitlines()[1:]] == ids[1:]


def test_failed_list_says_when_there_are_none(two_queues):
    listed = jobpool("failed", "list", "-c", str(two_queues))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "no failed jobs in default, emails"


def test_failed_arguments_are_shortened(cfg, redis_url, tmp_path):
    _fail(QueueManager(redis_url), tmp_path / ("x" * 200))
    listed = jobpool("failed", "list", "-c", str(cfg))
    row = listed.stdout.splitlines()[1]
    assert "path='" in row and "x" * 200 not in row and "..." in row


@pytest.mark.parametrize("action", ["retry", "delete"])
def test_failed_bulk_actions_need_all(cfg, redis_url, tmp_path, action):
    qm = QueueManager(redis_url)
    job_id = _fail(qm, tmp_path / "out")
    refused = jobpool("failed", action, "-q", "default", "-c", str(cfg))
    assert refused.returncode == 2
    assert "job id or --all" in refused.stderr
    assert qm.get_job_status(job_id)["status"] == "failed"
    done = jobpool("failed", action, "--all", "-c", str(cfg))
    assert done.returncode == 0, done.stderr
    assert "1 job(s)" in done.stdout


@pytest.mark.parametrize("action", ["retry", "delete"])
def test_failed_unknown_job_id_exits_1(cfg, action):
    result = jobpool("failed", action, "default:nope", "-c", str(cfg))
    assert result.returncode == 1
    assert "default:nope" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["list"], ["retry", "--all"], ["delete", "--all"]])
def test_failed_unknown_queue_exits_1(cfg, args):
    result = jobpool("failed", *args, "-q", "nope", "-c", str(cfg))
    assert result.returncode == 1
    assert "unknown queue 'nope'" in result.stderr


def test_status_pretty_has_iso_times_a_readable_traceback_and_the_arguments(
    cfg, redis_url, tmp_path
):
    job_id = _fail(QueueManager(redis_url), tmp_path / "out")
    result = jobpool("status", job_id, "--pretty", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(rf"created at\s+{ISO_TIME}", out), out
    assert "\nTraceback (most recent call last):\n" in out and "\\n" not in out
    assert f"path='{tmp_path / 'out'}'" in out


def test_embedded_status_exits_1_when_not_running(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text('[redis]\nurl = "embedded"\ndata_dir = "data"\n')
    result = jobpool("embedded", "status", "-c", str(path))
    assert result.returncode == 1 and result.stdout.startswith("not running")


def _timed(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = jobpool(*args)
    return result, time.monotonic() - started


def _redis_wait_overshoot(path: Path, wait: float) -> float:
    """Seconds `jobpool worker --redis-wait WAIT` took beyond WAIT, less the start-up time of a
    command that does not touch Redis (so that a slow, busy machine does not count)."""
    _, startup = _timed("check", "-c", str(path))
    result, took = _timed("worker", "-c", str(path), "--redis-wait", str(wait))
    assert result.returncode == 3, result.stderr
    return took - startup - wait


@pytest.mark.timing
def test_redis_wait_is_never_exceeded_when_nothing_listens(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text(f'[redis]\nurl = "redis://127.0.0.1:{free_port()}/0"\n')
    assert _redis_wait_overshoot(path, 3) < 0.5


@pytest.mark.timing
def test_redis_wait_bounds_an_attempt_that_hangs(tmp_path):
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        path = tmp_path / "jobpool.toml"
        path.write_text(f'[redis]\nurl = "redis://127.0.0.1:{silent.getsockname()[1]}/0"\n')
        assert _redis_wait_overshoot(path, 1) < 0.5
