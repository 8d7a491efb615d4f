"""Exit codes of the `jobpool` commands; the supervisor reads the reserved ones from children."""

OK = 0
ERROR = 1  # an unexpected error
CONFIG = 2  # bad configuration or usage: fix the file, retrying will not help
REDIS_UNREACHABLE = 3  # Redis could not be reached (after retries, for the worker)
IMPORT_FAILED = 4  # a module listed in `imports` could not be imported
RECYCLE_MEMORY = 90  # a supervised worker outgrew memory_limit and left after its job
RECYCLE_MAX_JOBS = 91  # a supervised worker ran max_jobs jobs and left to be replaced
RECYCLE_TIMEOUT = 92  # a job thread ran past its timeout: its worker left after its other jobs
RECYCLE_CANCEL = 93  # a job thread was cancelled: its worker left after its other jobs
