"""Unique jobs: which key a push holds, and for how long.

A job holds its key while it is queued, delayed, retrying or processing; a second push with
the same key meanwhile returns the first job's id. The check and the store are one atomic step
in the driver (lua/enqueue.lua); this module only names the key and checks the options.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from typing import Any

from jobpool.errors import JobEncodeError
from jobpool.functions import FunctionJob
from jobpool.job import Job

MAX_KEY = 512  # characters of an explicit unique_key

_canonical = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def key_of_arguments(job: Job, body: str) -> str:
    """The key of a job kept unique by class and arguments (`unique = True`): its registered
    name and a digest of its encoded body with the attributes in sorted order, so that the same
    arguments give the same key whatever order they were set in. A function's call is bound to
    its parameters first (see bound_call), so that f(1, 2), f(1, b=2) and f(1) with b=2 by
    default are one call with one key."""
    data = json.loads(body)
    if isinstance(job, FunctionJob):
        data["attrs"] = bound_call(job.signature, data["attrs"])
    digest = hashlib.sha256(_canonical(data).encode()).hexdigest()[:32]
    return f"{data['job']}:{digest}"


def bound_call(signature: inspect.Signature, attrs: dict[str, Any]) -> dict[str, Any]:
    """A function job's stored attributes with its call (`args`, `kwargs`) as one mapping of
    parameter to value, defaults filled in. A default JSON cannot store is left out (it cannot
    be passed in a push either, so leaving it out confuses no two calls); a call the signature
    refuses is kept as stored."""
    args, kwargs = attrs.get("args", []), attrs.get("kwargs", {})
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return attrs
    given = set(bound.arguments)
    bound.apply_defaults()
    call = {}
    for name, value in bound.arguments.items():
        if name in given:
            call[name] = value
            continue
        try:  # as a push stores it: a tuple default is the list a caller would send
            call[name] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError, RecursionError):
            continue
    rest = {key: value for key, value in attrs.items() if key not in ("args", "kwargs")}
    return {**rest, "call": call}


def unique_options(
    job: Job, body: str, unique_key: object, unique_for: object, always: bool = False
) -> tuple[str, float] | None:
    """(key, seconds held) for a push, or None when the job is not unique: no `unique_key`,
    not `always` (push_unique), and not a class (or `@job` function) with `unique = True`.
    JobEncodeError for an option that is wrong, before anything is stored."""
    if unique_key is None and not always and not getattr(job, "unique", False):
        return None
    if unique_key is None:
        key = key_of_arguments(job, body)
    elif isinstance(unique_key, str) and 0 < len(unique_key) <= MAX_KEY:
        key = unique_key
    else:
        raise JobEncodeError(
            f"unique_key must be a non-empty string of at most {MAX_KEY} characters, "
            f"got {unique_key!r}"
        )
    hold = getattr(job, "unique_for", None) if unique_for is None else unique_for
    if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0 < hold < math.inf:
        raise JobEncodeError(f"unique_for must be a number > 0 (seconds), got {hold!r}")
    return key, float(hold)
