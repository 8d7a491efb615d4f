"""Shared fixtures: one real redis-server per test session, flushed before each test.

A real server, not a fake, because jobpool's correctness lives in Lua scripts and blocking
commands whose semantics only Redis itself has. Under pytest-xdist each worker process gets
its own session, hence its own server, port and socket.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from helpers import RedisServer
from masters import master  # noqa: F401 - a fixture: `jobpool start` in its own group


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
