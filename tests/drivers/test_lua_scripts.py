"""Each Lua script, called directly against a real redis-server (their headers and key builders
are checked without Redis in tests/unit/test_lua_headers.py)."""

from __future__ import annotations

import json
import time

from jobpool.drivers.redis import scripts as s
from jobpool.drivers.redis.keys import QueueKeys

K = QueueKeys("jobpool", "default")


def _run(redis_client, name, keys, args):
    return s.Scripts(redis_client).run(name, keys, args)


def _enqueue(redis_client, job_id, delay_ms=0, max_tries=3):
    record = {"job": "Record", "queue": "default", "max_tries": max_tries}
    args = s.enqueue_args(delay_ms, [(job_id, "{}", record)])
    return _run(redis_client, "enqueue", s.enqueue_keys(K), args)


def _fetch(redis_client, worker_id, count=1):
    args = s.fetch_args(worker_id, count, 30_000, 100)
    return _run(redis_client, "fetch", s.fetch_keys(K, worker_id), args)


def _state(redis_client, job_id):
    return json.loads(redis_client.hget(K.state, job_id))


def test_enqueue_is_idempotent_by_id(redis_client):
    assert _enqueue(redis_client, "default:a") == 1
    assert _enqueue(redis_client, "default:a") == 0
    assert redis_client.llen(K.ready) == 1


def test_fetch_claims_and_records_the_lease(redis_client):
    _enqueue(redis_client, "default:a")
    out = _fetch(redis_client, "w1", 5)
    assert out[0] == -1 and out[1] == b""
    assert out[2] == b"default:a" and json.loads(out[4])["attempts"] == 1
    assert redis_client.lrange(K.wip("w1"), 0, -1) == [b"default:a"]
    assert redis_client.zscore(K.workers, "w1") is not None
    assert _state(redis_client, "default:a")["status"] == "processing"


def test_fetch_hands_back_a_claim_whose_reply_was_lost(redis_client):
    _enqueue(redis_client, "default:a")
    _fetch(redis_client, "w1")
    # The worker never saw that reply; its next fetch must not strand the job.
    out = _fetch(redis_client, "w1")
    assert out[2] == b"default:a"
    assert json.loads(out[4])["attempts"] == 1  # the lost claim did not count


def test_fetch_promotes_due_jobs_and_reports_the_next_due(redis_client):
    _enqueue(redis_client, "default:soon", delay_ms=1)
    _enqueue(redis_client, "default:late", delay_ms=60_000)
    # Time itself must pass (the server's clock, past the 1 ms delay). Not DEBUG SLEEP: Redis 7
    # and Valkey refuse DEBUG unless enable-debug-command allows it.
    time.sleep(0.01)
    out = _fetch(redis_client, "w1")
    assert out[2] == b"default:soon"
    assert 59_000 < out[0] <= 60_000
    assert _state(redis_client, "default:late")["status"] == "delayed"


def test_a_delayed_job_that_becomes_earliest_wakes_idle_workers(redis_client):
    _enqueue(redis_client, "default:late", delay_ms=60_000)
    assert redis_client.lrange(K.ready, 0, -1) == [b"~wake"]
    redis_client.delete(K.ready)
    _enqueue(redis_client, "default:later", delay_ms=120_000)
    assert redis_client.llen(K.ready) == 0  # not earlier: the workers' timers still hold
    _enqueue(redis_client, "default:sooner", delay_ms=30_000)
    assert redis_client.lrange(K.ready, 0, -1) == [b"~wake"]
    out = _fetch(redis_client, "w1")
    assert len(out) == 2 and redis_client.llen(K.ready) == 0  # the token is consumed, no job


def test_requeue_respects_a_live_lease_and_reaps_an_expired_one(redis_client):
    _enqueue(redis_client, "default:a")
    _fetch(redis_client, "w1")
    args = s.requeue_args("w1", "worker lost: its lease expired", 60_000, True, True)
    assert _run(redis_client, "requeue", s.requeue_keys(K, "w1"), args) == [-1]
    redis_client.zadd(K.workers, {"w1": 0})
    assert _run(redis_client, "requeue", s.requeue_keys(K, "w1"), args) == [1]
    assert redis_client.exists(K.wip("w1"), K.workers) == 0
    st = _state(redis_client, "default:a")
    assert st["status"] == "queued" and st["attempts"] == 1
    assert st["error"] == "worker lost: its lease expired"


def test_requeue_fails_a_last_attempt_as_retry_or_fail_does(redis_client):
    for job_id, worker in (("default:died", "w1"), ("default:raised", "w2")):
        _enqueue(redis_client, job_id, max_tries=1)
        _fetch(redis_client, worker)
    args = s.requeue_args("w1", "worker killed by signal 9", 60_000, False, True)
    out = _run(redis_client, "requeue", s.requeue_keys(K, "w1"), args)
    assert out == [1, b"default:died", b"Record"]  # back once, for its failed() hook
    args = s.retry_or_fail_args("default:raised", 0, "E: x", "tb", 60_000, False)
    assert _run(redis_client, "retry_or_fail", s.retry_or_fail_keys(K, "w2"), args) == 2
    died, raised = _state(redis_client, "default:died"), _state(redis_client, "default:raised")
    assert set(died) - {"hook"} == set(raised) - {"traceback"}
    assert died["status"] == "failed" and died["hook"] == 1
    assert died["expires_at"] - died["finished_at"] == 60_000
    assert redis_client.zrange(K.failed, 0, -1) == [b"default:died", b"default:raised"]
    assert redis_client.zscore(K.expire, "default:died") == died["expires_at"]
    assert sum(int(n) for n in redis_client.hvals(K.stats)) == 2


def _hook_entry(redis_client, job_id, hook):
    """A job failed for good whose failed() hook is pending (1) or started (2)."""
    record = {"job": "Record", "status": "failed", "attempts": 1, "hook": hook, "error": "killed"}
    redis_client.hset(K.state, job_id, json.dumps(record))
    redis_client.hset(K.payload, job_id, "{}")


def test_a_hook_starts_with_the_claim_of_its_batch_or_the_begin_script(redis_client):
    _hook_entry(redis_client, "default:a", 1)
    _hook_entry(redis_client, "default:b", 1)
    redis_client.rpush(K.ready, "default:a", "default:b")
    out = _fetch(redis_client, "w1", 2)
    assert [json.loads(out[4])["hook"], json.loads(out[7])["hook"]] == [2, 1]
    assert _state(redis_client, "default:a")["hook"] == 2
    begin = s.begin_keys(K, "w1"), s.begin_args("default:b", "w1")
    assert _run(redis_client, "begin", *begin) == 1
    b = _state(redis_client, "default:b")
    assert (b["status"], b["hook"], b["attempts"], "worker" in b) == ("failed", 2, 1, False)
    assert _run(redis_client, "begin", *begin) == 0


def test_requeue_drops_only_a_hook_that_started(redis_client):
    _hook_entry(redis_client, "default:started", 2)
    _hook_entry(redis_client, "default:waiting", 1)
    redis_client.rpush(K.wip("w1"), "default:started", "default:waiting")
    args = s.requeue_args("w1", "timeout after 1 s", 60_000, False, True)
    assert _run(redis_client, "requeue", s.requeue_keys(K, "w1"), args) == [1]
    started = _state(redis_client, "default:started")
    assert "hook" not in started and started["hook_error"] == "timeout after 1 s"
    waiting = _state(redis_client, "default:waiting")
    assert waiting["hook"] == 1 and "hook_error" not in waiting
    assert redis_client.lrange(K.ready, 0, -1) == [b"default:waiting"]
    # a shutdown (no attempt counted) hands even a started hook back, pending again
    _fetch(redis_client, "w2")
    assert _state(redis_client, "default:waiting")["hook"] == 2
    args = s.requeue_args("w2", "worker stopped", 60_000, False, False)
    assert _run(redis_client, "requeue", s.requeue_keys(K, "w2"), args) == [1]
    assert _state(redis_client, "default:waiting")["hook"] == 1


def test_fetch_reports_a_peer_whose_lease_lapsed(redis_client):
    redis_client.zadd(K.workers, {"dead": 0})
    out = _fetch(redis_client, "w1")
    assert out[1] == b"dead"


def test_renew_extends_leases(redis_client):
    deadline = _run(redis_client, "renew", s.renew_keys(K), s.renew_args(5_000, ["w1", "w2"]))
    assert redis_client.zscore(K.workers, "w1") == deadline
    assert redis_client.zscore(K.workers, "w2") == deadline


def test_ack_by_a_worker_that_lost_the_job_changes_nothing(redis_client):
    _enqueue(redis_client, "default:a")
    _fetch(redis_client, "w1")
    args = s.ack_args(1000, "", "w2", ["default:a"])
    assert _run(redis_client, "ack", s.ack_keys(K, "w2"), args) == [0, 0]
    assert _state(redis_client, "default:a")["status"] == "processing"
    args = s.ack_args(1000, "", "w1", ["default:a"])
    assert _run(redis_client, "ack", s.ack_keys(K, "w1"), args) == [1, 0]
    assert _state(redis_client, "default:a")["status"] == "completed"
    assert redis_client.hexists(K.payload, "default:a") == 0


def test_ack_begins_the_next_job_of_the_batch_and_counts_its_attempt(redis_client):
    _enqueue(redis_client, "default:a")
    _enqueue(redis_client, "default:b")
    _fetch(redis_client, "w1", 2)
    assert _state(redis_client, "default:b")["status"] == "queued"  # claimed, not begun

    args = s.ack_args(1000, "default:b", "w1", ["default:a"])
    assert _run(redis_client, "ack", s.ack_keys(K, "w1"), args) == [1, 1]

    assert _state(redis_client, "default:a")["status"] == "completed"
    b = _state(redis_client, "default:b")
    assert (b["status"], b["attempts"], b["worker"]) == ("processing", 1, "w1")
    # sent again after a dropped connection: nothing changes twice
    assert _run(redis_client, "ack", s.ack_keys(K, "w1"), args) == [0, 0]
    assert _state(redis_client, "default:b")["attempts"] == 1


def test_retry_or_fail_decides_by_the_stored_attempts(redis_client):
    _enqueue(redis_client, "default:a", max_tries=2)
    keys = s.retry_or_fail_keys(K, "w1")
    args = s.retry_or_fail_args("default:a", 0, "E: x", "tb", 60_000, False)
    for expected in (1, 2):
        _fetch(redis_client, "w1")
        assert _run(redis_client, "retry_or_fail", keys, args) == expected
    assert redis_client.zscore(K.failed, "default:a") is not None
    assert redis_client.zscore(K.expire, "default:a") is not None


def _enqueue_unique(redis_client, job_id, key, hold_ms=60_000, delay_ms=0):
    record = {"job": "Record", "queue": "default", "max_tries": 1, "unique_key": key}
    args = s.enqueue_args(delay_ms, [(job_id, "{}", record)], hold_ms)
    return _run(redis_client, "enqueue", s.enqueue_keys(K, key), args)


def test_enqueue_with_a_unique_key_stores_once_and_names_the_holder(redis_client):
    lock = K.unique("order:42")
    assert lock == "jobpool:{default}:unique:order:42"
    assert _enqueue_unique(redis_client, "default:a", "order:42", hold_ms=5_000) == 1
    assert redis_client.get(lock) == b"default:a"
    assert 4_000 < redis_client.pttl(lock) <= 5_000
    assert _state(redis_client, "default:a")["unique_lock"] == lock
    assert _enqueue_unique(redis_client, "default:b", "order:42") == b"default:a"
    assert not redis_client.hexists(K.state, "default:b")
    assert redis_client.lrange(K.ready, 0, -1) == [b"default:a"]
    # resent after a lost reply: its own id back, nothing stored twice
    assert _enqueue_unique(redis_client, "default:a", "order:42") == b"default:a"
    assert redis_client.llen(K.ready) == 1


def test_a_key_whose_holder_finished_or_vanished_is_free(redis_client):
    _enqueue_unique(redis_client, "default:a", "k")
    st = _state(redis_client, "default:a")
    st["status"] = "completed"  # as an ack that did not release the key leaves it
    redis_client.hset(K.state, "default:a", json.dumps(st))
    assert _enqueue_unique(redis_client, "default:b", "k") == 1
    assert redis_client.get(K.unique("k")) == b"default:b"
    redis_client.hdel(K.state, "default:b")  # deleted, or expired and pruned
    assert _enqueue_unique(redis_client, "default:c", "k", delay_ms=1_000) == 1
    assert _state(redis_client, "default:c")["status"] == "delayed"


def test_failing_for_good_releases_the_key_but_only_its_own(redis_client):
    _enqueue_unique(redis_client, "default:a", "k")
    _fetch(redis_client, "w1")
    args = s.retry_or_fail_args("default:a", 0, "E: x", "tb", 60_000, False)
    assert _run(redis_client, "retry_or_fail", s.retry_or_fail_keys(K, "w1"), args) == 2
    assert redis_client.exists(K.unique("k")) == 0
    # a key taken over by a newer job is left alone
    _enqueue_unique(redis_client, "default:b", "j")
    _fetch(redis_client, "w1")
    redis_client.set(K.unique("j"), "default:other")
    args = s.retry_or_fail_args("default:b", 0, "E: x", "tb", 60_000, True)
    assert _run(redis_client, "retry_or_fail", s.retry_or_fail_keys(K, "w1"), args) == 2
    assert redis_client.get(K.unique("j")) == b"default:other"


def _cancel(redis_client, job_id, ttl_ms=60_000):
    return _run(redis_client, "cancel", s.cancel_keys(K), s.cancel_args(job_id, ttl_ms))


def test_cancel_of_a_waiting_job_removes_it_and_releases_its_unique_key(redis_client):
    _enqueue_unique(redis_client, "default:a", "k")
    _enqueue(redis_client, "default:b", delay_ms=60_000)
    assert _cancel(redis_client, "default:a") == 1
    assert _cancel(redis_client, "default:b") == 1
    assert redis_client.llen(K.ready) == 0 or redis_client.lrange(K.ready, 0, -1) == [b"~wake"]
    assert redis_client.zcard(K.delayed) == 0
    for job_id in ("default:a", "default:b"):
        st = _state(redis_client, job_id)
        assert st["status"] == "cancelled" and "due_at" not in st
        assert st["expires_at"] - st["finished_at"] == 60_000
        assert redis_client.zscore(K.expire, job_id) == st["expires_at"]
    assert redis_client.exists(K.unique("k")) == 0
    assert _cancel(redis_client, "default:a") == 0  # already cancelled: nothing to do
    assert _cancel(redis_client, "default:unknown") == 0


def test_cancel_of_a_running_job_asks_it_to_stop(redis_client):
    _enqueue(redis_client, "default:a")
    _fetch(redis_client, "w1")
    assert _cancel(redis_client, "default:a") == 2
    st = _state(redis_client, "default:a")
    assert st["status"] == "processing" and st["cancel_requested_at"] > 0
    assert redis_client.lrange(K.wip("w1"), 0, -1) == [b"default:a"]
    assert _cancel(redis_client, "default:a") == 2  # asked again: the first time is kept
    assert _state(redis_client, "default:a")["cancel_requested_at"] == st["cancel_requested_at"]


def test_a_job_cancelled_while_claimed_in_a_batch_is_dropped_when_reached(redis_client):
    _enqueue(redis_client, "default:a")
    _enqueue(redis_client, "default:b")
    _enqueue(redis_client, "default:c")
    _fetch(redis_client, "w1", 3)
    assert _cancel(redis_client, "default:b") == 1  # claimed, not begun: it never runs
    assert _cancel(redis_client, "default:c") == 1
    begin = s.begin_keys(K, "w1"), s.begin_args("default:b", "w1")
    assert _run(redis_client, "begin", *begin) == -1
    args = s.ack_args(1000, "default:c", "w1", ["default:a"])  # the ack that begins the next
    assert _run(redis_client, "ack", s.ack_keys(K, "w1"), args) == [1, -1]
    assert redis_client.llen(K.wip("w1")) == 0
    assert _state(redis_client, "default:b")["status"] == "cancelled"
    assert _state(redis_client, "default:c")["status"] == "cancelled"


def test_a_cancelled_job_handed_back_is_dropped(redis_client):
    _enqueue(redis_client, "default:a")
    _enqueue(redis_client, "default:b")
    _fetch(redis_client, "w1", 2)
    _cancel(redis_client, "default:b")
    args = s.release_args("w1", 60_000, ["default:a", "default:b"])
    assert _run(redis_client, "release", s.release_keys(K, "w1"), args) == 2
    assert redis_client.lrange(K.ready, 0, -1) == [b"default:a"]


def test_a_stop_requested_job_whose_worker_was_killed_ends_cancelled(redis_client):
    _enqueue_unique(redis_client, "default:a", "k")
    _fetch(redis_client, "w1")
    _cancel(redis_client, "default:a")
    # the master killed the worker for it: a kill that does not count the attempt
    args = s.requeue_args("w1", "job default:a cancelled", 60_000, False, False)
    assert _run(redis_client, "requeue", s.requeue_keys(K, "w1"), args) == [0]
    st = _state(redis_client, "default:a")
    assert (st["status"], st["attempts"], "worker" in st) == ("cancelled", 1, False)
    assert redis_client.llen(K.ready) == 0 and redis_client.exists(K.unique("k")) == 0


def test_a_stop_requested_job_that_raises_is_cancelled_not_retried(redis_client):
    _enqueue(redis_client, "default:a", max_tries=3)
    _fetch(redis_client, "w1")
    _cancel(redis_client, "default:a")
    args = s.retry_or_fail_args("default:a", 0, "E: x", "tb", 60_000, False)
    assert _run(redis_client, "retry_or_fail", s.retry_or_fail_keys(K, "w1"), args) == 3
    st = _state(redis_client, "default:a")
    assert st["status"] == "cancelled" and st["error"] == "E: x"
    assert redis_client.zcard(K.delayed) == 0 and redis_client.zcard(K.failed) == 0
