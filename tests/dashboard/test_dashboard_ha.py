"""The dashboard reads and acts the same on a Sentinel-managed primary and on a Redis Cluster
(its queues spread over the primaries) as on one server."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from jobs import Fail, Record

from jobpool import QueueManager, Worker
from jobpool.config.load import config_from_dict
from jobpool.config.model import RedisConfig

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from jobpool.dashboard.app import create_app  # noqa: E402

TOKEN = "ha-token"
QUEUES = ("default", "mail", "reports", "images")  # on a Cluster: several slots, several nodes


def _client(redis_cfg: RedisConfig, qm: QueueManager) -> TestClient:
    cfg = config_from_dict(
        {"queues": {q: {} for q in QUEUES}, "dashboard": {"token": TOKEN}}, env={}
    )
    cfg = dataclasses.replace(cfg, redis=redis_cfg)
    return TestClient(create_app(cfg, qm.driver), follow_redirects=False)  # type: ignore[arg-type]


def _exercise(redis_cfg: RedisConfig, qm: QueueManager, tmp_path: Any) -> None:
    for queue in QUEUES:
        qm.push(Record(str(tmp_path / queue)), queue)
        Worker(qm, queue).run(burst=True, install_signals=False, keep_lease=False)
    failed = qm.push(Fail(str(tmp_path / "hook")), "mail")
    worker = Worker(qm, "mail")
    for _ in range(3):  # Fail: 3 tries
        worker.run(burst=True, install_signals=False, keep_lease=False)
    assert qm.get_job_status(failed)["status"] == "failed"

    client = _client(redis_cfg, qm)
    overview = client.get("/")
    assert overview.status_code == 200
    for queue in QUEUES:
        assert queue in overview.text
    page = client.get(f"/jobs/{failed}").text
    assert "RuntimeError: boom" in page and 'id="traceback"' in page
    assert failed in client.get("/failed?queue=mail").text
    # Acting: a signed-in operator retries the failed job.
    login = client.post("/login", data={"token": TOKEN, "next": "/failed"})
    assert login.status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/failed").text).group(1)
    done = client.post("/actions/retry", data={"csrf": csrf, "job_id": failed})
    assert done.status_code == 303 and "notice=retried" in done.headers["location"]
    assert qm.get_job_status(failed)["status"] == "queued"


def test_the_dashboard_on_a_redis_cluster(redis_cluster, cluster_qm, tmp_path):
    _exercise(redis_cluster, cluster_qm, tmp_path)


def test_the_dashboard_through_sentinel(redis_sentinel, tmp_path):
    qm = QueueManager(redis_sentinel)
    try:
        _exercise(redis_sentinel, qm, tmp_path)
    finally:
        qm.close()
