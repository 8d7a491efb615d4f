"""What a failed attempt leads to: a job's retry settings, read once from the job object.

The settings are attributes of the job (`retry_delay`, `retry_jitter`, `retry_backoff_max`,
`retry_on`, `dont_retry_on`): class attributes of a Job subclass, or of the class `@job`
generates for a function, so both kinds carry them the same way. The worker asks `decide()`
after every exception; the attempt count itself is decided in the queue (retry_or_fail.lua).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobpool import defaults
from jobpool.backoff import retry_wait
from jobpool.errors import Fail, JobEncodeError, Retry

ExceptionTypes = tuple[type[BaseException], ...]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how soon a job is retried.

    `retry_on` None retries any exception; a tuple retries only those (and their subclasses).
    `dont_retry_on` is never retried and wins over `retry_on`. `jobpool.Retry` is always retried
    and `jobpool.Fail` never, whatever the lists say.
    """

    retry_delay: float = 60.0
    jitter: bool = True
    backoff_max: float = defaults.RETRY_BACKOFF_MAX
    retry_on: ExceptionTypes | None = None
    dont_retry_on: ExceptionTypes = ()

    def retries(self, exc: BaseException) -> bool:
        """Whether the lists let this exception be retried."""
        if isinstance(exc, self.dont_retry_on):
            return False
        return self.retry_on is None or isinstance(exc, self.retry_on)

    def wait(self, failed_attempt: int, random: Callable[[], float] | None = None) -> float:
        """The backoff before the attempt after `failed_attempt` (see backoff.retry_wait)."""
        options: dict[str, Any] = {"jitter": self.jitter, "cap": self.backoff_max}
        if random is not None:
            options["random"] = random
        return retry_wait(self.retry_delay, failed_attempt, **options)

    def decide(self, exc: BaseException, failed_attempt: int) -> tuple[bool, float]:
        """(fail now, seconds before the next attempt) after `exc` ended `failed_attempt`.
        Whether attempts are left is not asked here: the queue knows the count."""
        if isinstance(exc, Fail):
            return True, 0.0
        if isinstance(exc, Retry):
            return False, self.wait(failed_attempt) if exc.delay is None else exc.delay
        if not self.retries(exc):
            return True, 0.0
        return False, self.wait(failed_attempt)


DEFAULT_POLICY = RetryPolicy()


def retry_policy(job: object | None) -> RetryPolicy:
    """The policy of a job (None: a job that could not be decoded), its instance values first.
    Raises JobEncodeError naming the setting that is wrong; push() calls it, so a wrong setting
    is refused before anything is stored."""
    if job is None:
        return DEFAULT_POLICY
    name = type(job).__name__
    delay = getattr(job, "retry_delay", DEFAULT_POLICY.retry_delay)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
        raise JobEncodeError(f"{name}.retry_delay must be a number >= 0, got {delay!r}")
    jitter = getattr(job, "retry_jitter", DEFAULT_POLICY.jitter)
    if not isinstance(jitter, bool):
        raise JobEncodeError(f"{name}.retry_jitter must be True or False, got {jitter!r}")
    cap = getattr(job, "retry_backoff_max", DEFAULT_POLICY.backoff_max)
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not cap > 0:
        raise JobEncodeError(f"{name}.retry_backoff_max must be a number > 0, got {cap!r}")
    retry_on = getattr(job, "retry_on", None)
    return RetryPolicy(
        float(delay),
        jitter,
        float(cap),
        None if retry_on is None else _exception_types(name, "retry_on", retry_on),
        _exception_types(name, "dont_retry_on", getattr(job, "dont_retry_on", ())),
    )


def _exception_types(job_name: str, attr: str, value: object) -> ExceptionTypes:
    if isinstance(value, (tuple, list)) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        return tuple(value)
    raise JobEncodeError(f"{job_name}.{attr} must be a tuple of exception classes, got {value!r}")
