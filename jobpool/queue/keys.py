"""Redis key names. One hash tag per queue keeps all of a queue's keys in one cluster slot, so
every script can declare every key it touches and still run on Redis Cluster."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue: ``PREFIX:{QUEUE}:PART``."""

    prefix: str
    queue: str

    def _key(self, part: str) -> str:
        return f"{self.prefix}:{{{self.queue}}}:{part}"

    @property
    def ready(self) -> str:
        return self._key("ready")

    @property
    def delayed(self) -> str:
        return self._key("delayed")

    @property
    def state(self) -> str:
        return self._key("state")

    @property
    def payload(self) -> str:
        return self._key("payload")

    @property
    def workers(self) -> str:
        return self._key("workers")

    @property
    def failed(self) -> str:
        return self._key("failed")

    @property
    def expire(self) -> str:
        return self._key("expire")

    @property
    def stats(self) -> str:
        return self._key("stats")

    def wip(self, worker_id: str) -> str:
        """The list of jobs one worker holds (work in progress)."""
        return self._key(f"wip:{worker_id}")
