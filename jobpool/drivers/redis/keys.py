"""Redis key names. One hash tag per queue keeps all of a queue's keys in one cluster slot, so
every script can declare every key it touches and still run on Redis Cluster."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue: ``PREFIX:{QUEUE}:PART``."""

    prefix: str
    queue: str

    def _key(self, part: str) -> str:
        return f"{self.prefix}:{{{self.queue}}}:{part}"

    @cached_property
    def ready(self) -> str:
        return self._key("ready")

    @cached_property
    def delayed(self) -> str:
        return self._key("delayed")

    @cached_property
    def state(self) -> str:
        return self._key("state")

    @cached_property
    def payload(self) -> str:
        return self._key("payload")

    @cached_property
    def workers(self) -> str:
        return self._key("workers")

    @cached_property
    def failed(self) -> str:
        return self._key("failed")

    @cached_property
    def expire(self) -> str:
        return self._key("expire")

    @cached_property
    def stats(self) -> str:
        return self._key("stats")

    @cached_property
    def paused(self) -> str:
        """Set while the queue is paused (`jobpool pause`): workers claim nothing from it."""
        return self._key("paused")

    @cached_property
    def starts(self) -> str:
        """When the queue's last jobs were claimed, for its rate limit (lua/fetch.lua)."""
        return self._key("starts")

    @cached_property
    def flows(self) -> str:
        """The queue's workflows (chains, batches) by their field in `state`, scored by when
        they were pushed: those still running, and a few finished ones not yet dropped (see
        lua/enqueue_flow.lua), for `jobpool stats`."""
        return self._key("flows")

    @cached_property
    def limits(self) -> str:
        """Job classes' recent starts and running jobs, for their own limits (fetch.lua)."""
        return self._key("limits")

    def wip(self, worker_id: str) -> str:
        """The list of jobs one worker holds (work in progress)."""
        return self._key(f"wip:{worker_id}")

    def schedule(self, name: str) -> str:
        """A schedule's claims and last run (lua/schedule_tick.lua), in the slot of the queue
        it pushes to, so that one script claims the tick and pushes the job."""
        return self._key(f"schedule:{name}")

    def history(self, resolution: str, index: int) -> str:
        """A minute's ("m") or an hour's ("h") finished jobs and run times (history.py)."""
        return self._key(f"history:{resolution}:{index}")

    def unique(self, unique_key: str) -> str:
        """The id of the job that holds a unique key (push(..., unique_key=...)), with a TTL."""
        return self._key(f"unique:{unique_key}")

    def done(self, job_id: str) -> str:
        """The pub/sub channel on which the script that finishes a job publishes its id, for
        `qm.result()` (a channel, not a key: nothing is stored)."""
        return self._key(f"done:{job_id}")
