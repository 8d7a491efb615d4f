"""A small chaos run (scripts/chaos runs the full one): jobs on three queues under a real
`jobpool start` while workers, the master and redis-server are SIGKILLed; nothing may be lost,
stuck or left unfinished, and a job may run twice only when its worker was killed before its ack.
"""

from __future__ import annotations

import sys

import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))

from chaos import Plan, run_chaos  # noqa: E402


@pytest.mark.parametrize("concurrency", [1, 4], ids=["one_job_per_worker", "concurrency_4"])
def test_chaos_run_loses_nothing_under_kills_and_a_redis_restart(tmp_path, concurrency):
    plan = Plan(
        jobs=1200,
        workers=2,
        concurrency=concurrency,
        kills=15,
        duration=8.0,
        lease=3.0,
        finish_timeout=40,
    )
    result = run_chaos(plan, tmp_path)
    print(result.report())

    assert (result.worker_kills, result.master_kills, result.redis_restarts) == (15, 1, 1)
    assert result.pushed == 1200
    assert result.lost == [] and result.stuck == [], result.report()
    assert result.still_queued == [] and result.failed_unexpectedly == [], result.report()
    assert result.completed_without_a_run == [], result.report()
    assert result.unexplained == [], result.report()
    assert result.completed + result.failed_as_designed == 1200
    assert result.failed_as_designed == result.kinds["doomed"]
    assert result.passed
