"""Cancel through the real processes: `jobpool start` kills the worker of a cancelled running job
and records it `cancelled` (no retry, no failed() hook), and `jobpool cancel ID`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SUPPORT, wait_until
from jobs import Linger, Record, runs
from masters import toml

from jobpool import Worker, batch, chain


def jobpool(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "jobpool.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=SUPPORT,
        timeout=60,
    )


@pytest.fixture
def cfg(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "jobpool.toml"
    path.write_text(f'imports = ["jobs"]\n[redis]\nurl = "{redis_url}"\n')
    return path


def test_a_running_job_cancelled_from_the_command_line_stops_and_its_worker_is_replaced(
    master, redis_url, redis_qm, tmp_path
):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    path = tmp_path / "out"
    job_id = redis_qm.push(Linger(str(path), 60))
    wait_until(lambda: path.exists(), 10)
    [pid] = m.workers()
    result = jobpool("cancel", job_id, "-c", str(m.config))
    assert result.returncode == 0, result.stderr
    assert "asked to stop" in result.stdout
    wait_until(lambda: redis_qm.get_job_status(job_id)["status"] == "cancelled", 10)
    record = redis_qm.get_job_status(job_id)
    assert record["attempts"] == 1 and record["cancel_requested_at"] <= record["finished_at"]
    m.wait_workers(1, gone=[pid])
    assert ("default.0", pid, "cancel") in m.exits(), m.log()
    assert f"job {job_id} cancelled" in m.log()
    # The replacement takes the next job: the cancelled one did not go back to the queue.
    after = redis_qm.push(Record(str(tmp_path / "after")))
    wait_until(lambda: redis_qm.get_job_status(after)["status"] == "completed", 10)
    assert runs(path) == [f"start:{pid}"]  # never finished, never retried, no failed() hook
    assert redis_qm.counts() == {"ready": 0, "delayed": 0, "in_flight": 0, "failed": 0}


def test_cancel_a_waiting_job_and_exit_1_for_unknown_or_finished_ones(cfg, redis_qm, tmp_path):
    waiting = redis_qm.push(Record(str(tmp_path / "out")))
    result = jobpool("cancel", waiting, "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert f"job {waiting} cancelled" in result.stdout
    assert redis_qm.get_job_status(waiting)["status"] == "cancelled"

    again = jobpool("cancel", waiting, "-c", str(cfg))
    assert again.returncode == 1 and "is cancelled: nothing to cancel" in again.stderr
    unknown = jobpool("cancel", "default:nope", "-c", str(cfg))
    assert unknown.returncode == 1 and "no job 'default:nope'" in unknown.stderr
    malformed = jobpool("cancel", "no-colon", "-c", str(cfg))
    assert malformed.returncode == 1 and "not a jobpool job id" in malformed.stderr
    done = redis_qm.push(Record(str(tmp_path / "out")))
    Worker(redis_qm).process(redis_qm.pop())
    result = jobpool("cancel", done, "-c", str(cfg))
    assert result.returncode == 1 and "is completed" in result.stderr


def test_cancel_a_chain_by_its_id_and_exit_1_for_a_batch(cfg, redis_qm, tmp_path):
    path = str(tmp_path / "out")
    chain_id = redis_qm.push(chain(Record(path, "a"), Record(path, "b")))
    result = jobpool("cancel", chain_id, "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert f"chain {chain_id} cancelled" in result.stdout
    assert redis_qm.get_job_status(chain_id)["status"] == "cancelled"
    again = jobpool("cancel", chain_id, "-c", str(cfg))
    assert again.returncode == 1 and "is cancelled: nothing to cancel" in again.stderr
    batch_id = redis_qm.push(batch([Record(path, "c")]))
    refused = jobpool("cancel", batch_id, "-c", str(cfg))
    assert refused.returncode == 1 and "is a batch" in refused.stderr
