"""A worker hands back the jobs of a peer whose lease lapsed, but not while the lapse may be
Redis's own doing: right after Redis restarted (nobody could renew a lease while it was down),
or right after this worker lost Redis. Live peers then get a lease's time to renew first."""

from __future__ import annotations

import time

from helpers import wait_until
from jobs import Record

from jobpool import QueueManager, Worker


def held_by_dead_peer(qm: QueueManager, path: str) -> str:
    job_id = qm.push(Record(path))
    qm.driver.session().fetch("default", "w-dead", count=1, lease=0.001)
    time.sleep(0.01)  # its lease lapsed
    return job_id


def test_a_lapsed_lease_is_not_reaped_until_redis_has_been_up_a_lease(
    redis_server, redis_url, tmp_path
):
    redis_server.restart()
    qm = QueueManager(redis_url)
    job_id = held_by_dead_peer(qm, str(tmp_path / "out"))
    worker = Worker(qm, lease=2)
    worker._reap("default", "w-dead")
    assert qm.get_job_status(job_id)["status"] == "processing"  # not yet: Redis is too young

    def reaped() -> bool:
        worker._reap("default", "w-dead")
        return qm.get_job_status(job_id)["status"] == "queued"

    wait_until(reaped, 5, 0.1, "the lapsed lease to be reaped once Redis is 2 s old")
    qm.close()


def test_a_worker_that_just_lost_redis_does_not_reap(redis_qm, tmp_path):
    job_id = held_by_dead_peer(redis_qm, str(tmp_path / "out"))
    worker = Worker(redis_qm, lease=1)
    worker._lost_redis_at = time.monotonic() + 60  # as _guarded records an unreachable Redis
    worker._reap("default", "w-dead")
    assert redis_qm.get_job_status(job_id)["status"] == "processing"
    worker._lost_redis_at = time.monotonic() - 2

    def reaped() -> bool:
        worker._reap("default", "w-dead")
        return redis_qm.get_job_status(job_id)["status"] == "queued"

    wait_until(reaped, 3, 0.1, "the lapsed lease to be reaped")
