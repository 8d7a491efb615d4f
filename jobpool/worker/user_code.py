"""Calling a job's own code from a worker: awaiting what it returns, and containing its forks.

A job's `handle()` or `failed()` may be `async def`, or return another awaitable: it runs to its
end on an event loop the worker keeps for its life, so that clients and pools a job keeps on the
loop stay usable by the next job. With `concurrency` above 1 the loop runs in a thread of its own,
and each job's awaitable is a task on it, awaited by the job's thread: many async jobs share the
loop, and a timeout or a cancel cancels one task and nothing else. A job may also call os.fork(),
and a careless one lets its child return into the worker: that child shares the worker's id and
claimed jobs, so it must leave before it can acknowledge, fail or hand back any of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from jobpool.errors import JobTimeoutError

log = logging.getLogger("jobpool.worker")


class UserCode:
    """Runs job methods for one worker process."""

    def __init__(self, threaded: bool = False) -> None:
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threaded = threaded
        self._loop_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def adopt_process(self) -> None:
        """This process is the worker now (a worker object may be made before a fork)."""
        self._pid = os.getpid()

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """`func(*args)`, and the awaitable it returns run to its end. Returns only in the
        worker's own process: see leave_if_forked."""
        result = func(*args)
        self.leave_if_forked()
        if inspect.isawaitable(result):
            if self._threaded:
                future = asyncio.run_coroutine_threadsafe(_await(result), self.event_loop())
                result = future.result()
            else:
                result = self.event_loop().run_until_complete(_await(result))
            self.leave_if_forked()
        return result

    def call_timed(
        self,
        func: Callable[..., Any],
        timeout: float | None,
        attach: Callable[[concurrent.futures.Future[Any]], None],
    ) -> Any:
        """call() from a job thread of a concurrent worker: an awaitable runs as a task on the
        loop thread (`attach` gets it, to cancel), cancelled past `timeout` seconds, which then
        raises JobTimeoutError. (A sync function past its timeout cannot be stopped: the worker
        itself enforces that, see slots.py.)"""
        result = func()
        self.leave_if_forked()
        if not inspect.isawaitable(result):
            return result
        future = asyncio.run_coroutine_threadsafe(_await(result), self.event_loop())
        attach(future)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if not future.cancel():  # it ended just now
                return future.result()
            concurrent.futures.wait([future], CANCEL_GRACE)
            raise JobTimeoutError(f"timeout after {timeout:g} s: its task was cancelled") from None

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """The worker's event loop, made at its first async job (in a thread of its own when
        the worker runs jobs on threads)."""
        if self._loop is not None:
            return self._loop
        if not self._threaded:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            return self._loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="jobpool: event loop", daemon=True
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
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
        if self._loop_thread is not None:
            self._close_threaded(loop, self._loop_thread)
            self._loop_thread = None
            return
        with contextlib.suppress(Exception):
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)

    @staticmethod
    def _close_threaded(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(CANCEL_GRACE)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CANCEL_GRACE)
        if not thread.is_alive():
            loop.close()


CANCEL_GRACE = 5.0  # seconds a cancelled task may take to end (it may clean up, or ignore it)


async def _await(awaitable: Any) -> Any:
    """Any awaitable as a coroutine, which run_until_complete() takes whatever it is."""
    return await awaitable
