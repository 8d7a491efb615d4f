"""The `jobpool` command's non-worker subcommands, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jobs import Fail, Record

from jobpool import QueueManager, Worker

ROOT = Path(__file__).resolve().parent.parent


def jobpool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "QUEUE_DRIVER"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "jobpool.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT / "tests",
        timeout=60,
    )


@pytest.fixture
def cfg(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "jobpool.toml"
    path.write_text(f'imports = ["jobs"]\n[redis]\nurl = "{redis_url}"\n')
    return path


def test_check_accepts_the_example_config():
    result = jobpool("check", "-c", str(ROOT / "etc" / "jobpool.toml"))
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
    deleted = jobpool("failed", "delete", "-q", "default", "-c", str(cfg))
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
        status = jobpool("embedded", "status", "-c", str(path))
        assert status.stdout.startswith("running")
        job_id = QueueManager.from_config(path).push(Record(str(tmp_path / "out")))
        assert jobpool("status", job_id, "-c", str(path)).returncode == 0
    finally:
        stopped = jobpool("embedded", "stop", "-c", str(path))
    assert stopped.stdout.strip() == "stopped"
    assert jobpool("embedded", "status", "-c", str(path)).stdout.startswith("not running")
    assert (tmp_path / "data" / "appendonly.aof").exists() or any((tmp_path / "data").glob("*.aof"))
