"""An async job past its timeout under the real `jobpool start`: killed with its worker, failed
like a sync one (the rest of async jobs, on both drivers, is tests/drivers/test_async_jobs.py)."""

from __future__ import annotations

from helpers import wait_until
from jobs import AsyncSleep, runs
from masters import toml

from jobpool import QueueManager


def test_an_async_job_past_its_timeout_is_killed_and_fails(redis_url, tmp_path, master):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    out = tmp_path / "out"
    qm = QueueManager(redis_url)
    job_id = qm.push(AsyncSleep(str(out), 30))
    record = wait_until(
        lambda: (
            (qm.get_job_status(job_id) or {}).get("status") == "failed"
            and qm.get_job_status(job_id)
        ),
        15,
        0.05,
        "the async job to be killed at its timeout",
    )
    assert "timeout after 1 s" in record["error"]
    assert [line.split(":")[0] for line in runs(out)] == ["start"]
    pid = runs(out)[0].split(":")[1]
    m.wait_log(rf"worker default.0 exited: pid {pid}, reason timeout")
    qm.close()
