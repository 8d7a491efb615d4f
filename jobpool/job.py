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
from collections.abc import Sequence
from typing import Any, ClassVar

from jobpool.errors import JobDecodeError, JobEncodeError, UnknownJobError

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
    queue: ClassVar[str | None] = None
    """The queue `push()` uses when none is given (None: the configured default queue)."""

    job_name: ClassVar[str]

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.job_name = name or f"{cls.__module__}:{cls.__qualname__}"
        _REGISTRY[cls.job_name] = cls

    def handle(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define handle()")

    def failed(self, exc: BaseException) -> None:  # noqa: B027 - optional hook
        """Called once, in a worker, when the job has failed for good."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def registered(name: str) -> type[Job] | None:
    """The registered Job subclass called `name`, if this process imported it."""
    return _REGISTRY.get(name)


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
    for key, value in attrs.items():
        try:
            json.dumps(value, allow_nan=False)
        except RecursionError:
            return (
                f"{type(job).__name__}: attribute {key!r} is nested too deeply to store as JSON "
                "(or refers to itself)"
            )
        except (TypeError, ValueError):
            kind = "a non-finite float" if _non_finite(value) else type(value).__name__
            return (
                f"{type(job).__name__}: attribute {key!r} cannot be stored as JSON ({kind}); "
                "keep job attributes to str, int, float, bool, None, lists and dicts"
            )
    return f"{type(job).__name__}: attributes cannot be stored as JSON: {exc}"


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
            f"unknown job class {data['job']!r}: not a registered Job subclass in this worker "
            "(is its module listed in `imports`?)"
        )
    job = cls.__new__(cls)
    job.__dict__.update(attrs)
    return job


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
