"""The Job base class, its registry and its JSON form.

A payload read from Redis can only name a class that this process already imported and that
subclasses `Job`: the registry is filled by subclassing, never by importing what a payload says.
That is the whole security model of job bodies; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from jobpool import defaults
from jobpool.errors import JobDecodeError, JobEncodeError, ResultError, UnknownJobError

_REGISTRY: dict[str, type[Job]] = {}


class Job:
    """Subclass it, give it `handle()`, push instances.

    The instance attributes are the job's arguments: they are stored as JSON and set again on a
    fresh instance (without calling `__init__`) in the worker. An instance attribute overrides the
    class default, so `job.max_tries = 5` before a push is honoured.
    """

    max_tries: int = 3
    """Attempts in all, the first included."""
    retry_delay: float = 60
    """Seconds before attempt 2; attempt n+1 waits ``retry_delay * 2**(n-1)``."""
    timeout: float | None = None
    """Hard limit for one attempt in seconds, enforced by the supervisor (None: no limit)."""
    retry_jitter: bool = True
    """Spread each retry's wait over ``[d/2, 3d/2]`` around the schedule's ``d`` (False:
    exactly ``d``), so that jobs that failed together do not retry together."""
    retry_backoff_max: float = defaults.RETRY_BACKOFF_MAX
    """The longest wait before a retry, in seconds, jitter included."""
    retry_on: ClassVar[tuple[type[BaseException], ...] | None] = None
    """Retry only these exceptions (and their subclasses); any other fails the job at once,
    still calling `failed()`. None: retry any exception."""
    dont_retry_on: ClassVar[tuple[type[BaseException], ...]] = ()
    """Never retry these: they fail the job at once (wins over `retry_on`)."""
    unique: ClassVar[bool] = False
    """While a job of this class with the same arguments is queued, delayed, retrying or
    processing, push() returns that job's id instead of queueing another."""
    unique_for: float = defaults.UNIQUE_FOR
    """The longest a unique job holds its key, in seconds, so a lost record cannot hold it
    forever."""
    queue: ClassVar[str | None] = None
    """The queue `push()` uses when none is given (None: the configured default queue)."""
    rate_limit: ClassVar[str | None] = None
    """At most this many jobs of this class start per window ("10/s", "100/m", "30/10s"),
    across every worker and host; one over it waits as delayed, no attempt counted."""
    max_running: ClassVar[int | None] = None
    """At most this many jobs of this class run at once, across every worker and host."""

    job_name: ClassVar[str]

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.job_name = name or f"{cls.__module__}:{cls.__qualname__}"
        _REGISTRY[cls.job_name] = cls

    def handle(self) -> object:
        """The job's work. What it returns (a JSON value) is stored as the job's `result`."""
        raise NotImplementedError(f"{type(self).__name__} must define handle()")

    def failed(self, exc: BaseException) -> None:  # noqa: B027 - optional hook
        """Called once, in a worker, when the job has failed for good."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def _stored_values(self) -> Iterator[tuple[str, Any]]:
        """What push() stores, each with the name an error about it uses."""
        for key, value in vars(self).items():
            yield f"attribute {key!r}", value


def registered(name: str) -> type[Job] | None:
    """The registered Job subclass called `name`, if this process imported it."""
    return _REGISTRY.get(name)


def unregister(cls: type[Job]) -> None:
    """Take a class out of the registry: a base that is no job by itself (FunctionJob)."""
    if _REGISTRY.get(cls.job_name) is cls:
        del _REGISTRY[cls.job_name]


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_job(job: Job) -> str:
    """The job's body: its registered name and its instance attributes, as compact JSON."""
    if not isinstance(job, Job):
        raise JobEncodeError(f"push() takes a Job instance, got {type(job).__name__}")
    attrs = vars(job)
    try:
        return _encode({"job": type(job).job_name, "attrs": attrs})
    except (TypeError, ValueError, RecursionError) as exc:
        raise JobEncodeError(_explain_unencodable(job, attrs, exc)) from None


def _explain_unencodable(job: Job, attrs: dict[str, Any], exc: Exception) -> str:
    for label, value in job._stored_values():
        why = unencodable(value)
        if why is not None:
            return (
                f"{type(job).__name__}: {label} {why}; keep job arguments and attributes to "
                "str, int, float, bool, None, lists and dicts"
            )
    return f"{type(job).__name__}: attributes cannot be stored as JSON: {exc}"


def unencodable(value: Any) -> str | None:
    """Why `value` cannot be stored as JSON, or None if it can."""
    try:
        _encode(value)
    except RecursionError:
        return "is nested too deeply to store as JSON (or refers to itself)"
    except (TypeError, ValueError):
        kind = "a non-finite float" if _non_finite(value) else type(value).__name__
        return f"cannot be stored as JSON ({kind})"
    return None


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def decode_job(body: bytes | str) -> Job:
    """Rebuild a job from its body; every way a body can be wrong raises JobDecodeError."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobDecodeError(f"payload is not valid JSON ({exc}); it may be truncated") from None
    except RecursionError:
        raise JobDecodeError("payload is nested too deeply to decode") from None
    if not isinstance(data, dict) or not isinstance(data.get("job"), str):
        raise JobDecodeError("payload has no job class name (expected {'job': ..., 'attrs': ...})")
    attrs = data.get("attrs")
    if not isinstance(attrs, dict):
        raise JobDecodeError(f"payload for {data['job']!r} has no attrs object")
    cls = _REGISTRY.get(data["job"])
    if cls is None:
        raise UnknownJobError(
            f"unknown job class {data['job']!r}: not a registered Job subclass or @job function "
            "in this worker (is its module listed in `imports`?)"
        )
    job = cls.__new__(cls)
    job.__dict__.update(attrs)
    return job


def encode_result(job: Job, value: Any, max_result: int) -> str:
    """What a job returned, as compact JSON for its record ('' for None); ResultError if it is
    not a JSON value or its JSON is above `max_result` bytes."""
    if value is None:
        return ""
    try:
        text = _encode(value)
    except (TypeError, ValueError, RecursionError):
        raise ResultError(
            f"{type(job).__name__} returned {type(value).__name__}, which "
            f"{unencodable(value) or 'cannot be stored as JSON'}; return str, int, float, "
            "bool, None, lists or dicts"
        ) from None
    size = len(text) if text.isascii() else len(text.encode())
    if size > max_result:
        raise ResultError(
            f"{type(job).__name__} returned {size} bytes of JSON, above max_result "
            f"({max_result} bytes); store large results elsewhere and return a reference"
        )
    return text


def job_settings(job: Job) -> tuple[int, float, float | None]:
    """(max_tries, retry_delay, timeout) of a job, instance values first, validated."""
    max_tries, retry_delay, timeout = job.max_tries, job.retry_delay, job.timeout
    if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
        raise JobEncodeError(
            f"{type(job).__name__}.max_tries must be an int >= 1, got {max_tries!r}"
        )
    if (
        isinstance(retry_delay, bool)
        or not isinstance(retry_delay, (int, float))
        or retry_delay < 0
    ):
        raise JobEncodeError(
            f"{type(job).__name__}.retry_delay must be a number >= 0, got {retry_delay!r}"
        )
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise JobEncodeError(f"{type(job).__name__}.timeout must be > 0 or None, got {timeout!r}")
    return max_tries, float(retry_delay), timeout


def import_job_modules(modules: Sequence[str]) -> None:
    """Import the modules that define Job classes, so that their classes register.

    The current directory goes first on sys.path, as with `python -m`, so that `imports` can name
    the project's own modules. Raises ImportError naming the module that failed.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ImportError(
                f"cannot import job module {name!r} listed in `imports`: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
