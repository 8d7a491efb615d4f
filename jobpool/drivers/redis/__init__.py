"""The Redis driver: key layout, one Lua script per atomic operation, the driver that runs them
for producers and admins, and the session a worker claims and acknowledges through."""

from jobpool.drivers.redis.driver import RedisDriver
from jobpool.drivers.redis.keys import QueueKeys

__all__ = ["QueueKeys", "RedisDriver"]
