"""The host registry: each `jobpool start` master heartbeats its host, pid, config, queues and
workers into Redis under a key that expires; `jobpool stats` shows them, and a master that
stops cleanly leaves at once, while a SIGKILLed one disappears when its key expires."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

from helpers import kill_tree, wait_until
from jobs import Sleep, runs
from masters import toml
from test_cancel_command import jobpool

from jobpool import QueueManager
from jobpool.supervisor.registry import TTL, list_hosts, master_key


def test_a_master_registers_its_workers_and_their_jobs(master, redis_url, redis_client, tmp_path):
    m = master(toml(redis_url, queues={"default": {"workers": 2}, "mail": {}}), workers=3)
    qm = QueueManager(redis_url)

    def registered() -> list:
        hosts = list_hosts(qm.driver)
        return hosts if hosts and hosts[0]["worker_count"] == 3 else []

    hosts = wait_until(registered, 15, 0.1, "a beat that shows the 3 workers")
    assert len(hosts) == 1
    host = hosts[0]
    assert (host["host"], host["pid"]) == (socket.gethostname(), m.pid)
    assert host["config"] == str(m.config.resolve()) and host["version"]
    assert sorted(host["queues"]) == ["default", "mail"] and host["worker_count"] == 3
    assert {w["pid"] for w in host["workers"]} == set(m.workers())
    assert 0 < redis_client.pttl(master_key("jobpool", host["id"])) <= TTL * 1000

    out = tmp_path / "out"
    job_id = qm.push(Sleep(str(out), 8.0))
    wait_until(lambda: runs(out), 10, 0.05, "the job to start")

    def shows_the_job() -> list:
        return [w for h in list_hosts(qm.driver) for w in h["workers"] if w["job"] == job_id]

    busy = wait_until(shows_the_job, 10, 0.2, "the next beat to show the running job")
    assert busy[0]["state"] == "busy" and busy[0]["queue"] == "default"
    assert busy[0]["rss"] > 1_000_000 and busy[0]["jobs_done"] == 0 and busy[0]["restarts"] == []
    (since,) = busy[0]["job_started_at"]
    assert 0 <= time.time() - since < 10  # how long it has run: the dashboard shows it

    # A worker killed: its slot's restart and reason are listed, and jobs done are counted.
    os.kill(busy[0]["pid"], signal.SIGKILL)

    def restarted() -> list:
        return [
            w
            for h in list_hosts(qm.driver)
            for w in h["workers"]
            if w["slot"] == busy[0]["slot"] and w["restarts"]
        ]

    (again,) = wait_until(restarted, 15, 0.2, "a beat that lists the restart")
    assert [r["reason"] for r in again["restarts"]] == ["crash"]
    assert again["pid"] != busy[0]["pid"]
    job_id = qm.push(Sleep(str(out), 8.0))  # runs again below, as the stats check wants
    wait_until(shows_the_job, 15, 0.2, "the next job to show")

    stats = jobpool("stats", "--json", "-c", str(m.config))
    listed = json.loads(stats.stdout)["~hosts"]
    assert [h["pid"] for h in listed] == [m.pid]
    text = jobpool("stats", "-c", str(m.config)).stdout
    assert f"pid {m.pid}: 3 workers" in text and job_id in text

    m.send(signal.SIGTERM)  # a clean stop leaves the registry at once
    m.send(signal.SIGTERM)
    m.wait_exit(30)
    assert list_hosts(qm.driver) == []
    qm.close()


def test_a_sigkilled_master_disappears_when_its_heartbeat_expires(master, redis_url, redis_client):
    m = master(toml(redis_url), workers=2)
    qm = QueueManager(redis_url)
    host = wait_until(lambda: list_hosts(qm.driver), 10, 0.1, "the master's first beat")[0]
    kill_tree(m.pid)
    key = master_key("jobpool", host["id"])
    left = redis_client.pttl(key)
    assert 0 < left <= TTL * 1000  # gone within TTL (30 s) of its last beat: well under 60 s
    redis_client.pexpire(key, 1)  # rather than wait 30 s here: the expiry is Redis's own
    wait_until(lambda: list_hosts(qm.driver) == [], 5, 0.05, "the entry to expire")
    assert redis_client.smembers("jobpool:{~hosts}:index") == set()
    qm.close()


def test_check_says_which_redis_it_will_use_and_whether_it_answers(redis_server, tmp_path):
    single = tmp_path / "single.toml"
    single.write_text(f'[redis]\nurl = "{redis_server.tcp_url}"\n')
    result = jobpool("check", "-c", str(single))
    assert result.returncode == 0, result.stderr
    assert f"redis: single server {redis_server.tcp_url}: reachable" in result.stdout

    sentinels = tmp_path / "sentinel.toml"
    sentinels.write_text('[redis]\nsentinels = ["127.0.0.1:1"]\nservice_name = "mymaster"\n')
    result = jobpool("check", "-c", str(sentinels))
    assert result.returncode == 0  # the file is fine; the deployment is not up
    assert "redis: Sentinel: service 'mymaster' through 1 sentinel(s) 127.0.0.1:1" in result.stderr
    assert "NOT reachable" in result.stderr
