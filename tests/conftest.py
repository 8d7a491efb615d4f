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

from collections.abc import Iterator

import pytest
import redis
from helpers import RedisServer
from masters import master  # noqa: F401 - a fixture: `jobpool start` in its own group

from jobpool import QueueManager


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
        client.flushall()
    return redis_server.url


@pytest.fixture
def redis_client(redis_server: RedisServer, redis_url: str) -> Iterator[redis.Redis]:
    """A client (bytes replies) on the emptied server, closed after the test."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(params=["memory", "redis"])
def qm(request: pytest.FixtureRequest) -> Iterator[QueueManager]:
    """A QueueManager on each driver in turn: the in-memory one, then the session's server."""
    url = None if request.param == "memory" else request.getfixturevalue("redis_url")
    manager = QueueManager(url)
    yield manager
    manager.close()


@pytest.fixture
def redis_qm(redis_url: str) -> Iterator[QueueManager]:
    """A QueueManager on the session's server only: for tests that need Redis itself (other
    processes sharing the queue, a server made full or read-only, its sessions and scripts)."""
    manager = QueueManager(redis_url)
    yield manager
    manager.close()
