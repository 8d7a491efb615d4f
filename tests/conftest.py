"""Shared fixtures: one real redis-server per test session, flushed before each test.

A real server, not a fake, because jobpool's correctness lives in Lua scripts and blocking
commands whose semantics only Redis itself has. The server starts with the first test that asks
for it, so that tests/unit (which never does) runs without one. Under pytest-xdist each worker
process gets its own session, hence its own server, port and socket.

The tests are laid out by what they need: tests/unit nothing but Python, tests/drivers a
redis-server, tests/processes real `jobpool worker` / `jobpool start` processes; tests/support
holds the modules they share (on sys.path through pyproject's pytest `pythonpath`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import redis
from cluster import Cluster
from helpers import NO_REDIS7, RedisServer, free_port, redis7_server
from masters import master  # noqa: F401 - a fixture: `jobpool start` in its own group
from sentinel import SentinelSet, sentinel_binary

from jobpool import QueueManager
from jobpool.config import RedisConfig


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's redis-server: .url (unix), .tcp_url, .port, .socket_path, .pid, .client(),
    .restart() and .stop(). It is killed at session end whatever the tests did."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The unix URL of the session's server, emptied for this test (and restarted if a previous
    test stopped it)."""
    if not redis_server.is_running():
        redis_server.start()
    with redis_server.client() as client:
        # SYNC: Valkey frees lazily by default (lazyfree-lazy-user-flush yes), and memory freed
        # after the test began would upset the tests that set maxmemory from used_memory.
        client.execute_command("FLUSHALL", "SYNC")
    return redis_server.url


@pytest.fixture
def redis_client(redis_server: RedisServer, redis_url: str) -> Iterator[redis.Redis]:
    """A client (bytes replies) on the emptied server, closed after the test."""
    client = redis_server.client()
    yield client
    client.close()


QM_BACKENDS = ("memory", "redis")  # a module may set its own QM_BACKENDS, adding "cluster"


@pytest.fixture
def read_only(redis_client: redis.Redis) -> Iterator[Callable[[bool], None]]:
    """read_only(True) makes the session's server a replica of a primary that does not exist,
    as after a failover seen from the old primary; read_only(False) promotes it again."""
    dead = free_port()

    def switch(on: bool) -> None:
        if on:
            redis_client.replicaof("127.0.0.1", dead)
        else:
            redis_client.replicaof("NO", "ONE")

    yield switch
    redis_client.replicaof("NO", "ONE")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that takes `qm` once per backend: the module's QM_BACKENDS, or those of
    $JOBPOOL_TEST_BACKENDS (say "memory,redis,cluster" to run every such test on a Cluster)."""
    if "qm" in metafunc.fixturenames:
        chosen = os.environ.get("JOBPOOL_TEST_BACKENDS")
        backends = chosen.split(",") if chosen else getattr(metafunc.module, "QM_BACKENDS", None)
        metafunc.parametrize("qm", backends or QM_BACKENDS, indirect=True)


@pytest.fixture
def qm(request: pytest.FixtureRequest) -> Iterator[QueueManager]:
    """A QueueManager on each backend in turn: the in-memory driver, the session's server, and
    (where the module asks for it) the session's Redis Cluster."""
    fixture = {
        "memory": None,
        "redis": "redis_url",
        "cluster": "redis_cluster",
        "sentinel": "redis_sentinel",
    }[request.param]
    manager = QueueManager(None if fixture is None else request.getfixturevalue(fixture))
    yield manager
    manager.close()


@pytest.fixture
def redis_qm(redis_url: str) -> Iterator[QueueManager]:
    """A QueueManager on the session's server only: for tests that need Redis itself (other
    processes sharing the queue, a server made full or read-only, its sessions and scripts)."""
    manager = QueueManager(redis_url)
    yield manager
    manager.close()


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's Redis Cluster (tests/support/cluster.py): three primaries with a replica
    each, started by the first test that asks for it, killed at session end. Debian's
    redis-server 7 runs it (the rest of the suite runs on the embedded Valkey)."""
    if not os.environ.get("JOBPOOL_CLUSTER_SERVER") and redis7_server() is None:
        pytest.skip(f"the Cluster tests {NO_REDIS7}")
    nodes = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def redis_cluster(redis_cluster_nodes: Cluster) -> RedisConfig:
    """The [redis] section of a config for the session's Cluster (`cluster = true`), its
    primaries emptied for this test."""
    redis_cluster_nodes.wait_healthy()
    redis_cluster_nodes.flush()
    port = redis_cluster_nodes.ports[0]
    return RedisConfig(host="127.0.0.1", port=port, cluster=True)


@pytest.fixture
def cluster_qm(redis_cluster: RedisConfig) -> Iterator[QueueManager]:
    """A QueueManager on the session's Cluster, as `cluster = true` configures it."""
    manager = QueueManager(redis_cluster)
    yield manager
    manager.close()


@pytest.fixture(scope="session")
def redis_sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """The session's Sentinel deployment (tests/support/sentinel.py): a primary, a replica and
    three sentinels, started by the first test that asks for it, killed at session end."""
    if sentinel_binary() is None:
        pytest.skip("redis-sentinel is not installed (Debian: apt-get install redis-sentinel)")
    nodes = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def redis_sentinel(redis_sentinel_set: SentinelSet) -> RedisConfig:
    """The [redis] section of a config that reaches the session's primary through its three
    sentinels, with durable writes (wait_replicas = 1); the primary emptied for this test."""
    redis_sentinel_set.wait_healthy()
    with redis_sentinel_set.primary() as primary:
        primary.flushall()
    return RedisConfig(
        sentinels=tuple(redis_sentinel_set.addresses),
        service_name="mymaster",
        wait_replicas=1,
    )
