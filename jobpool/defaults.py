"""Every default of jobpool, defined once.

The config dataclasses (config/model.py) take their defaults from here, and so do the classes
that can be built without a config: QueueManager, Worker and the drivers. A default changed here
changes for all of them; README.md and etc/jobpool.toml document the same values.

Durations are in seconds, sizes in bytes. Nothing here imports anything: every part of jobpool
may read it.
"""

from __future__ import annotations

# -- top level ---------------------------------------------------------------------------------
DRIVER = "redis"
DEFAULT_QUEUE = "default"  # where push() puts a job that names no queue
LOG_LEVEL = "info"
LOG_FORMAT = "text"

# -- [redis] -----------------------------------------------------------------------------------
REDIS_HOST = "localhost"
REDIS_PORT = 6379
REDIS_DATABASE = 0
PREFIX = "jobpool"  # the first part of every Redis key jobpool writes
DATA_DIR = ".jobpool"  # the embedded server's directory, relative to the config file
SOCKET_TIMEOUT = 5.0
SSL_CERT_REQS = "required"
WAIT_REPLICAS = 0  # durable writes off: a write is done once the primary has it
WAIT_TIMEOUT = 1.0  # how long a durable write waits for its replicas before it is reported

# -- [jobs] ------------------------------------------------------------------------------------
COMPLETED_TTL = 86400.0  # 1 day: how long a completed job's record is kept
FAILED_TTL = 7 * 86400.0  # 7 days: how long a failed job (and its record) is kept
MAX_PAYLOAD = 1024 * 1024  # 1 MiB: the largest encoded job push() accepts
MAX_RESULT = 1024 * 1024  # 1 MiB: the largest result (JSON) a job may return

# -- a Job's own settings (class attributes, see job.py) ---------------------------------------
RETRY_BACKOFF_MAX = 3600.0  # 1 hour: the longest wait before a retry, jitter included
UNIQUE_FOR = 86400.0  # 1 day: the longest a unique job holds its key (unique = True, push_unique)

# -- [pool], and each queue of [queues] --------------------------------------------------------
WORKERS = 1
MAX_JOBS = 0  # 0: a worker is never recycled for the number of jobs it ran
GRACEFUL_TIMEOUT = 30.0  # how long a draining worker may finish its job before it is killed
LEASE = 30.0  # a worker that does not renew its lease this long is presumed dead
PREFETCH = 32  # the most jobs a worker claims at once
CONCURRENCY = 1  # jobs one worker process runs at once (above 1: on threads and asyncio tasks)
PRELOAD = False
MEMORY_CHECK_INTERVAL = 1.0  # how often the master checks memory_hard_limit
RESTART_BACKOFF_MAX = 60.0  # the longest wait before a crashing slot starts again

# -- [schedules.NAME] --------------------------------------------------------------------------
SCHEDULE_TIMEZONE = "UTC"  # the zone a cron expression is read in
SCHEDULE_CATCH_UP = "last"  # after every master was down: run the last missed tick once
SCHEDULE_GRACE = 60.0  # a tick claimed later than this after its time counts as missed
SCHEDULE_RESOLVE_TIMEOUT = 60.0  # how long the master waits for its job modules to resolve

# -- the CLI -----------------------------------------------------------------------------------
REDIS_WAIT = 30.0  # how long `jobpool start` and `jobpool worker` retry an unreachable Redis
DASHBOARD_LISTEN = "127.0.0.1:9809"  # where `jobpool dashboard` serves without [dashboard] listen
