"""tests/unit runs without Redis and without processes, in a second or so: a test here that asks
for the session's redis-server fails at once, naming where it belongs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def redis_server() -> None:
    pytest.fail("tests/unit runs without Redis: a test that needs it belongs in tests/drivers")
