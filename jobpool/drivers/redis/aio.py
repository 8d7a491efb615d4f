"""The Redis driver's producer side for asyncio code: `qm.apush()` (unique keys included) and
`qm.aresult()` in an async web app (FastAPI, aiohttp), on redis-py's asyncio client.

The same scripts with the same KEYS and ARGV builders as the driver (scripts.py), and the same
wait for a result (RedisDriver.wait_finished): only the round trips are awaited. redis-py's
asyncio connections belong to the event loop that made them, so the driver keeps one of these
per loop (RedisDriver.aio()).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio

from jobpool.drivers.base import FINISHED
from jobpool.drivers.redis import scripts as s
from jobpool.drivers.redis.client import async_client
from jobpool.drivers.redis.driver import (
    ENQUEUE_CHUNK,
    RECHECK,
    SUBSCRIBED,
    _push_error,
    replication_error,
    stored_record,
)
from jobpool.drivers.redis.parse import ms
from jobpool.ids import queue_of

if TYPE_CHECKING:
    from jobpool.drivers.redis.driver import RedisDriver


class AsyncRedisDriver:
    """Pushes and waits for results on one event loop, for one RedisDriver."""

    def __init__(self, driver: RedisDriver):
        self.driver = driver
        self.client = async_client(driver.client)
        self._scripts = {
            name: self.client.register_script(s.source(name)) for name in ("enqueue", "watch")
        }

    async def enqueue(
        self, queue: str, jobs: Sequence[tuple[str, str, dict[str, Any]]], delay: float = 0.0
    ) -> int:
        """As RedisDriver.enqueue: a batch per script call, each whole or not at all."""
        keys, delay_ms, stored = s.enqueue_keys(self.driver.keys(queue)), ms(delay), 0
        for i in range(0, len(jobs), ENQUEUE_CHUNK):
            chunk = jobs[i : i + ENQUEUE_CHUNK]
            try:
                reply, confirmed = await self._enqueue(keys, s.enqueue_args(delay_ms, chunk))
            except redis.RedisError as exc:
                error = _push_error(exc, jobs[:i], chunk)
                if error is exc:
                    raise
                raise error from exc
            stored += int(reply)
            if confirmed < self.driver.wait_replicas:
                raise replication_error(confirmed, self.driver, jobs[:i], chunk)
        return stored

    async def _enqueue(self, keys: list[str], args: list[Any]) -> tuple[Any, int]:
        """enqueue.lua, and with `wait_replicas` a WAIT in the same round trip (as
        RedisDriver.run_and_wait); (its reply, the replicas that confirmed it)."""
        d = self.driver
        if not d.wait_replicas:
            return await self._scripts["enqueue"](keys=keys, args=args), 0
        pipe = self.client.pipeline(transaction=False)
        await self._scripts["enqueue"](keys=keys, args=args, client=pipe)
        pipe.execute_command("WAIT", d.wait_replicas, d.wait_timeout_ms)
        reply, confirmed = await pipe.execute()
        return reply, int(confirmed)

    async def enqueue_unique(
        self,
        queue: str,
        job: tuple[str, str, dict[str, Any]],
        unique_key: str,
        unique_for: float,
        delay: float = 0.0,
    ) -> tuple[str, bool]:
        """As RedisDriver.enqueue_unique: one job, stored unless the holder of `unique_key`
        waits or runs (enqueue.lua with the key); (id, created)."""
        keys = s.enqueue_keys(self.driver.keys(queue), unique_key)
        args = s.enqueue_args(ms(delay), [job], max(ms(unique_for), 1))
        try:
            reply, confirmed = await self._enqueue(keys, args)
        except redis.RedisError as exc:
            error = _push_error(exc, [], [job])
            if error is exc:
                raise
            raise error from exc
        if confirmed < self.driver.wait_replicas:
            raise replication_error(confirmed, self.driver, [], [job])
        if isinstance(reply, bytes) and reply.decode() != job[0]:
            return reply.decode(), False
        return job[0], True

    async def wait_finished(self, job_id: str, timeout: float | None) -> dict[str, Any] | None:
        """As RedisDriver.wait_finished, awaiting instead of blocking."""
        try:
            k = self.driver.keys(queue_of(job_id))
        except ValueError:
            return None
        record = stored_record(job_id, await self.client.hget(k.state, job_id))
        if record is None or record["status"] in FINISHED or timeout is not None and timeout <= 0:
            return record
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        channel = k.done(job_id)
        async with self.client.pubsub() as pubsub:
            await pubsub.subscribe(channel)
            if await pubsub.get_message(timeout=SUBSCRIBED) is None:  # the confirmation
                raise redis.TimeoutError(f"no reply to SUBSCRIBE {channel} in {SUBSCRIBED} s")
            args = s.watch_args(job_id, channel)
            raw = await self._scripts["watch"](keys=s.watch_keys(k), args=args)
            while True:
                record = stored_record(job_id, raw)
                left = deadline - time.monotonic()
                if record is None or record["status"] in FINISHED or left <= 0:
                    return record
                await pubsub.get_message(timeout=min(left, RECHECK))
                raw = await self.client.hget(k.state, job_id)

    async def close(self) -> None:
        await self.client.aclose()


if TYPE_CHECKING:  # mypy proves it keeps the protocol of drivers/base.py
    from jobpool.drivers.base import AsyncDriver

    def _conforms(aio: AsyncRedisDriver) -> AsyncDriver:
        return aio
