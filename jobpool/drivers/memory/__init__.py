"""The in-memory driver: queues in one process, no Redis, for unit tests of code that pushes jobs.
The driver (driver) keeps the Redis driver's promises in plain dicts under one lock; a worker
claims and acknowledges through its session (session)."""

from jobpool.drivers.memory.driver import MemoryDriver
from jobpool.drivers.memory.session import MemorySession

__all__ = ["MemoryDriver", "MemorySession"]
