"""What runs in one worker process: the loop that claims and runs jobs (loop), the hooks it
reports through (events), how it calls a job's own code (user_code), and the lease keeper
of a standalone worker (lease_keeper)."""

from jobpool.worker.loop import Worker

__all__ = ["Worker"]
