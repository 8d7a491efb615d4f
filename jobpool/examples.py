"""Example jobs: the ones the README and the demo use (`imports = ["jobpool.examples"]`)."""

from __future__ import annotations

import logging

from jobpool.context import current_manager
from jobpool.job import Job

log = logging.getLogger("jobpool.examples")


class SendEmailJob(Job):
    """Sends one email (here: logs it). Three attempts, a minute apart, then two."""

    max_tries = 3
    retry_delay = 60

    def __init__(self, to: str, subject: str, body: str):
        self.to, self.subject, self.body = to, subject, body

    def handle(self) -> None:
        if "@" not in self.to:
            raise ValueError(f"not an email address: {self.to!r}")
        log.info("sending email to %s: %s", self.to, self.subject)

    def failed(self, exc: BaseException) -> None:
        log.error("giving up on email to %s: %s", self.to, exc)


class ProcessOrderJob(Job):
    """Processes an order, then queues the confirmation; if it fails for good, tells support."""

    max_tries = 2
    retry_delay = 1

    def __init__(self, order_id: int, email: str, amount: float):
        self.order_id, self.email, self.amount = order_id, email, amount

    def handle(self) -> None:
        if self.amount <= 0:
            raise ValueError(f"order {self.order_id}: amount must be positive, got {self.amount}")
        log.info("processed order %s (%.2f)", self.order_id, self.amount)
        current_manager().push(
            SendEmailJob(self.email, f"Order {self.order_id} confirmed", "Thank you!"), "emails"
        )

    def failed(self, exc: BaseException) -> None:
        current_manager().push(
            SendEmailJob("support@example.com", f"Order {self.order_id} failed", str(exc)),
            "emails",
        )


class FlakyJob(Job):
    """Fails every attempt: shows retries with backoff, then `failed`."""

    max_tries = 3
    retry_delay = 1

    def handle(self) -> None:
        raise RuntimeError("the payment gateway timed out")
