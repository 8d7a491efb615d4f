"""A small Sentinel chaos run (scripts/chaos --sentinel runs the full one): jobs on three queues
under a real `jobpool start` that reaches its Redis through three sentinels, with durable writes
(wait_replicas = 1), while the primary is failed over twice (SENTINEL FAILOVER) and SIGKILLed
once. Nothing may be lost or stuck, no worker may be replaced because of a failover, and a job
may run twice only when its outcome was not yet replicated at a failover (a few per failover).
"""

from __future__ import annotations

import sys

import pytest
from helpers import REPO
from sentinel import sentinel_binary

sys.path.insert(0, str(REPO / "scripts"))

from chaos import Plan, run_chaos  # noqa: E402

pytestmark = pytest.mark.skipif(
    sentinel_binary() is None,
    reason="redis-sentinel is not installed (Debian: apt-get install redis-sentinel)",
)


def test_sentinel_chaos_run_loses_nothing_across_two_failovers_and_a_primary_kill(tmp_path):
    plan = Plan(jobs=1200, workers=2, kills=4, duration=9.0, finish_timeout=60, sentinel=True)
    result = run_chaos(plan, tmp_path)
    print(result.report())

    assert len(result.failovers) == 3 and result.worker_kills == 4, result.report()
    assert result.pushed == 1200
    assert result.lost == [] and result.stuck == [], result.report()
    assert result.still_queued == [] and result.failed_unexpectedly == [], result.report()
    assert result.completed_without_a_run == [], result.report()
    assert result.unexplained == [], result.report()
    assert result.worker_replacements == 0, result.report()  # workers ride through failovers
    workers = plan.workers * len(plan.queues)
    failovers = len(result.failovers) + result.unplanned_failovers  # see SentinelSet.switches
    assert result.by_failover <= 2 * workers * failovers, result.report()
    assert max(result.reconnect_seconds) < 10, result.report()
    assert result.passed
