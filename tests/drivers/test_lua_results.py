"""The scripts behind results, called directly against a real redis-server: ack.lua stores what
a job returned as its exact JSON, watch.lua asks for a wake-up, and finishing a job (ack.lua,
mark_failed in common.lua) publishes on the channel it named."""

from __future__ import annotations

import json

import pytest

from jobpool.drivers.redis import scripts as s
from jobpool.drivers.redis.keys import QueueKeys

K = QueueKeys("jobpool", "default")


def _run(redis_client, name, keys, args):
    return s.Scripts(redis_client).run(name, keys, args)


def _claimed(redis_client, job_id, max_tries=3):
    record = {"job": "Record", "queue": "default", "max_tries": max_tries}
    _run(redis_client, "enqueue", s.enqueue_keys(K), s.enqueue_args(0, [(job_id, "{}", record)]))
    _run(redis_client, "fetch", s.fetch_keys(K, "w1"), s.fetch_args("w1", 1, 30_000, 100))


def _watch(redis_client, job_id):
    out = _run(redis_client, "watch", s.watch_keys(K), s.watch_args(job_id, K.done(job_id)))
    return None if out is None else json.loads(out)


def _state(redis_client, job_id):
    return json.loads(redis_client.hget(K.state, job_id))


@pytest.mark.parametrize(
    "result", ["[]", "{}", '{"a":[],"b":0.30000000000000004}', "12345678901234567"]
)
def test_ack_stores_the_result_as_the_exact_json_it_was_given(redis_client, result):
    _claimed(redis_client, "default:a")
    args = s.ack_args(1000, "", "w1", ["default:a"], results=[result])
    assert _run(redis_client, "ack", s.ack_keys(K, "w1"), args) == [1, 0]
    raw = redis_client.hget(K.state, "default:a").decode()
    assert raw.endswith(f',"result":{result}}}')
    record = json.loads(raw)
    assert record["status"] == "completed" and record["result"] == json.loads(result)


def test_ack_without_a_result_stores_no_field(redis_client):
    _claimed(redis_client, "default:a")
    _run(redis_client, "ack", s.ack_keys(K, "w1"), s.ack_args(1000, "", "w1", ["default:a"]))
    assert "result" not in _state(redis_client, "default:a")


def test_watch_marks_an_unfinished_job_and_leaves_updated_at_alone(redis_client):
    assert _watch(redis_client, "default:nope") is None
    _claimed(redis_client, "default:a")
    before = _state(redis_client, "default:a")
    seen = _watch(redis_client, "default:a")
    assert seen["status"] == "processing" and seen["notify"] == K.done("default:a")
    after = _state(redis_client, "default:a")
    assert after == seen and after["updated_at"] == before["updated_at"]


def test_watch_leaves_a_finished_job_untouched(redis_client):
    _claimed(redis_client, "default:a")
    _run(redis_client, "ack", s.ack_keys(K, "w1"), s.ack_args(1000, "", "w1", ["default:a"]))
    raw = redis_client.hget(K.state, "default:a")
    assert _watch(redis_client, "default:a")["status"] == "completed"
    assert redis_client.hget(K.state, "default:a") == raw


def _subscribed(redis_client, channel):
    pubsub = redis_client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    return pubsub


def test_ack_publishes_the_id_on_a_watched_jobs_channel_and_forgets_it(redis_client):
    _claimed(redis_client, "default:a")
    pubsub = _subscribed(redis_client, K.done("default:a"))
    try:
        _watch(redis_client, "default:a")
        args = s.ack_args(1000, "", "w1", ["default:a"], results=["7"])
        _run(redis_client, "ack", s.ack_keys(K, "w1"), args)
        message = pubsub.get_message(timeout=5)
        assert (message["type"], message["data"]) == ("message", b"default:a")
        record = _state(redis_client, "default:a")
        assert "notify" not in record and record["result"] == 7
    finally:
        pubsub.close()


def test_failing_for_good_publishes_on_a_watched_jobs_channel(redis_client):
    _claimed(redis_client, "default:a", max_tries=1)
    pubsub = _subscribed(redis_client, K.done("default:a"))
    try:
        _watch(redis_client, "default:a")
        keys = s.retry_or_fail_keys(K, "w1")
        args = s.retry_or_fail_args("default:a", 0, "E: x", "tb", 60_000, False)
        assert _run(redis_client, "retry_or_fail", keys, args) == 2
        message = pubsub.get_message(timeout=5)
        assert (message["type"], message["data"]) == ("message", b"default:a")
    finally:
        pubsub.close()


def test_an_unwatched_job_publishes_nothing(redis_client):
    _claimed(redis_client, "default:a")
    pubsub = _subscribed(redis_client, K.done("default:a"))
    try:
        _run(redis_client, "ack", s.ack_keys(K, "w1"), s.ack_args(1000, "", "w1", ["default:a"]))
        assert pubsub.get_message(timeout=0.2) is None
    finally:
        pubsub.close()
