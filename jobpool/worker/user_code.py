"""Calling a job's own code from a worker: awaiting what it returns, and containing its forks.

A job's `handle()` or `failed()` may be `async def`, or return another awaitable: it runs to its
end on an event loop the worker keeps for its life, so that clients and pools a job keeps on the
loop stay usable by the next job. A job may also call os.fork(), and a careless one lets its child
return into the worker: that child shares the worker's id and claimed jobs, so it must leave
before it can acknowledge, fail or hand back any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger("jobpool.worker")


class UserCode:
    """Runs job methods for one worker process."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None

    def adopt_process(self) -> None:
        """This process is the worker now (a worker object may be made before a fork)."""
        self._pid = os.getpid()

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """`func(*args)`, and the awaitable it returns run to its end. Returns only in the
        worker's own process: see leave_if_forked."""
        result = func(*args)
        self.leave_if_forked()
        if inspect.isawaitable(result):
            result = self.event_loop().run_until_complete(_await(result))
            self.leave_if_forked()
        return result

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """The worker's event loop, made at its first async job."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop

    def leave_if_forked(self, code: int = 0) -> None:
        """In a child forked by a job: exit at once, skipping every cleanup of the worker's."""
        if os.getpid() != self._pid:
            log.error(
                "a job forked and its child (pid %d) returned into the worker; the child exits "
                "now (end forked children with os._exit())",
                os.getpid(),
            )
            logging.shutdown()
            os._exit(code)

    def close(self) -> None:
        """Cancel what jobs left running on the loop, and close it."""
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(Exception):
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


async def _await(awaitable: Any) -> Any:
    """Any awaitable as a coroutine, which run_until_complete() takes whatever it is."""
    return await awaitable
