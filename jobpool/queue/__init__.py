"""The Redis queue core: key layout, Lua scripts, and the driver that runs them."""

from jobpool.queue.driver import RedisDriver
from jobpool.queue.keys import QueueKeys

__all__ = ["QueueKeys", "RedisDriver"]
