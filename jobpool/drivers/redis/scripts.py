"""Loads the Lua scripts (one file per atomic operation) and builds their KEYS and ARGV.

The builders are pure functions of QueueKeys, so the key order each script expects is tested
without Redis; `Scripts` only binds them to a client.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import redis

from jobpool.drivers.redis.keys import QueueKeys

_INCLUDE = re.compile(r"^-- @include (\w+)$", re.MULTILINE)
OPERATIONS = (
    "enqueue",
    "fetch",
    "start",
    "ack",
    "retry_or_fail",
    "requeue",
    "release",
    "renew",
    "retry_failed",
    "delete",
)


@cache
def source(name: str) -> str:
    """The text of lua/NAME.lua with its `-- @include X` lines replaced by lua/includes/X.lua."""
    lua = resources.files("jobpool.drivers.redis") / "lua"
    text = (lua / f"{name}.lua").read_text()
    return _INCLUDE.sub(lambda m: (lua / "includes" / f"{m.group(1)}.lua").read_text(), text)


class Scripts:
    """The registered scripts of one client; any the server forgot (a restart, SCRIPT FLUSH) are
    loaded again and run once more."""

    def __init__(self, client: redis.Redis):
        self._client = client
        self._by_name = {name: client.register_script(source(name)) for name in OPERATIONS}

    def run(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        if client is not None:  # a pipeline: redis-py loads what is missing when it runs
            return self._by_name[name](keys=keys, args=args, client=client)
        script = self._by_name[name]
        try:  # EVALSHA straight away: the Script wrapper costs more than a small script does
            return self._client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return script(keys=keys, args=args)

    def sha(self, name: str) -> str:
        return self._by_name[name].sha


def enqueue_keys(k: QueueKeys) -> list[str]:
    return [k.ready, k.delayed, k.state, k.payload, k.workers]


def fetch_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.ready, k.delayed, k.state, k.payload, k.workers, k.wip(worker_id)]


def start_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.wip(worker_id), k.state]


def ack_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.wip(worker_id), k.state, k.payload, k.expire, k.failed, k.stats]


def retry_or_fail_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [
        k.wip(worker_id),
        k.state,
        k.payload,
        k.delayed,
        k.ready,
        k.failed,
        k.expire,
        k.stats,
        k.workers,
    ]


def requeue_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.workers, k.wip(worker_id), k.ready, k.state, k.failed, k.expire, k.stats]


def release_keys(k: QueueKeys, worker_id: str) -> list[str]:
    return [k.wip(worker_id), k.ready, k.state, k.workers]


def renew_keys(k: QueueKeys) -> list[str]:
    return [k.workers]


def retry_failed_keys(k: QueueKeys) -> list[str]:
    return [k.failed, k.expire, k.state, k.payload, k.ready]


def delete_keys(k: QueueKeys) -> list[str]:
    return [k.ready, k.delayed, k.failed, k.expire, k.state, k.payload]
