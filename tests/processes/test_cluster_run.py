"""jobpool on a 3-primary Redis Cluster, as real processes: two `jobpool start` masters serving
8 queues spread over the primaries lose nothing while one primary fails over (a small run of
scripts/cluster_run, which runs 20,000 jobs), and the commands that read what is stored (stats,
status, failed, cancel, check) see every node."""

from __future__ import annotations

import json
import sys

from helpers import REPO
from jobs import Fail, Record
from test_cli import jobpool

from jobpool import QueueManager, Worker

sys.path.insert(0, str(REPO / "scripts"))

from cluster_run import Plan, run_cluster  # noqa: E402


def test_two_masters_lose_nothing_while_a_primary_fails_over(tmp_path):
    plan = Plan(jobs=1600, queues=8, masters=2, duration=4.0, failover_at=0.4)
    result = run_cluster(plan, tmp_path)
    print(result.report())

    assert len(set(result.queues.values())) == 3  # the queues live on every primary
    assert result.moved_queues and result.failed_over
    assert result.pushed == 1600
    assert result.lost == [] and result.stuck == [] and result.unfinished == [], result.report()
    assert result.completed_without_a_run == [], result.report()
    assert result.completed == 1600
    assert result.worker_exits == 0  # the workers rode through the failover
    assert result.master_exits == [0, 0], result.report()
    assert result.reconnect_seconds is not None and result.reconnect_seconds < 10
    assert result.passed


def test_the_commands_read_every_node_of_a_cluster(redis_cluster_nodes, redis_cluster, tmp_path):
    queues = redis_cluster_nodes.spread_queues(3)
    cfg = tmp_path / "jobpool.toml"
    lines = ['imports = ["jobs"]', "[redis]", 'host = "127.0.0.1"']
    lines += [f"port = {redis_cluster.port}", "cluster = true"]
    lines += [f"[queues.{q}]" for q in queues]
    cfg.write_text("\n".join(lines) + "\n")
    qm = QueueManager(redis_cluster)
    failed = {}
    for queue in queues:
        job = Fail(str(tmp_path / "out"))
        job.max_tries = 1
        failed[queue] = qm.push(job, queue)
        Worker(qm, queue=queue).process(qm.pop(queue))
        qm.push_many([Record(str(tmp_path / "out"))] * 2, queue)
    waiting = qm.push(Record(str(tmp_path / "out")), "elsewhere")  # a queue no one serves

    check = jobpool("check", "-c", str(cfg))
    assert check.returncode == 0, check.stderr
    assert "Cluster" in check.stdout and "reachable, 3 primaries" in check.stdout, check.stdout
    stats = jobpool("stats", "-c", str(cfg), "--json")
    assert stats.returncode == 0, stats.stderr
    shown = json.dumps(json.loads(stats.stdout))
    for queue in [*queues, "elsewhere"]:  # "elsewhere" is found by a SCAN of every primary
        assert f'"{queue}"' in shown, shown
    listed = jobpool("failed", "list", "-c", str(cfg))
    assert listed.returncode == 0, listed.stderr
    assert all(job_id in listed.stdout for job_id in failed.values()), listed.stdout
    status = jobpool("status", "-c", str(cfg), failed[queues[1]])
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "failed"
    retried = jobpool("failed", "retry", "--all", "-c", str(cfg))
    assert retried.returncode == 0, retried.stderr
    assert all(qm.get_job_status(i)["status"] == "queued" for i in failed.values())
    cancelled = jobpool("cancel", "-c", str(cfg), waiting)
    assert cancelled.returncode == 0, cancelled.stderr
    assert qm.get_job_status(waiting)["status"] == "cancelled"
    qm.close()


def test_a_master_waits_for_a_cluster_that_is_not_up_yet(tmp_path):
    """A Cluster client reads the slot map as it is made: `jobpool worker --redis-wait` must
    wait and then fail with exit 3, not crash on RedisClusterException."""
    cfg = tmp_path / "jobpool.toml"
    cfg.write_text('[redis]\nhost = "127.0.0.1"\nport = 1\ncluster = true\n')
    result = jobpool("worker", "-c", str(cfg), "--redis-wait", "0.5", "--burst")
    assert result.returncode == 3, result.stderr
    assert "cannot reach Redis" in result.stderr
    assert "Traceback" not in result.stderr
