"""Which workers the pool should run: slots per queue from the config, the SIGTTIN/SIGTTOU
adjustment, and config generations that tell a changed queue's old workers from its new ones."""

from __future__ import annotations

from jobpool.config import Config, QueueConfig
from jobpool.supervisor.children import Slot


class PoolPlan:
    def __init__(self, config: Config):
        self.config = config
        self.generations: dict[str, int] = {}
        self.delta = 0  # SIGTTIN/SIGTTOU: workers added to (or taken from) every queue

    def queues(self) -> dict[str, QueueConfig]:
        """The queues served: [queues], or the default queue alone with [pool]'s settings."""
        cfg = self.config
        return dict(cfg.queues) or {cfg.default_queue: cfg.queue(cfg.default_queue)}

    def count(self, queue: QueueConfig) -> int:
        return max(queue.workers + self.delta, 1)

    def wanted(self) -> set[Slot]:
        return {
            Slot(name, i, self.generations.get(name, 0))
            for name, queue in self.queues().items()
            for i in range(self.count(queue))
        }

    def grow(self) -> None:
        self.delta += 1

    def shrink(self) -> None:
        """One fewer on every queue, keeping at least one worker on each."""
        self.delta = max(self.delta - 1, 1 - min(q.workers for q in self.queues().values()))

    def reload(self, new: Config) -> list[str]:
        """Adopt `new`: a queue whose settings (or the settings every worker shares) changed
        gets a new generation, so its workers are replaced. Returns the removed queues."""
        old_queues, shared_changed = self.queues(), _shared(self.config) != _shared(new)
        self.config = new
        for name, queue in self.queues().items():
            if shared_changed or old_queues.get(name) != queue:
                self.generations[name] = self.generations.get(name, 0) + 1
        return sorted(set(old_queues) - set(self.queues()))

    def describe(self) -> str:
        return ", ".join(f"{name} x{self.count(q)}" for name, q in sorted(self.queues().items()))


def _shared(cfg: Config) -> tuple[object, ...]:
    """What every worker is built from besides its queue's settings: a change restarts all."""
    return (cfg.imports, cfg.redis, cfg.jobs, cfg.log_level, cfg.log_format)
