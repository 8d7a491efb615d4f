"""Functions as jobs: `@job` turns a function into a Job class of its own.

Each decorated function gets a generated `FunctionJob` subclass, registered under the
function's name like any Job class, whose attributes are the call's arguments (`args`,
`kwargs`) and whose `handle()` calls the function. So a function job's body is a class job's
body (`{"job": NAME, "attrs": {"args": [...], "kwargs": {...}}}`), and the worker, retries,
`timeout`, `failed()` and results are the class machinery itself, not a second path.

The decorated function still runs inline when called; `.push()`, `.later()` and
`.push_many()` queue it through the current manager (see context.py) or `manager=`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from jobpool.context import current_manager
from jobpool.errors import JobEncodeError
from jobpool.job import Job, unregister

if TYPE_CHECKING:
    from jobpool.manager import Delay, QueueManager

P = ParamSpec("P")
R = TypeVar("R")

RESERVED = "manager"  # the keyword push(), later() and push_many() take for the manager
_MISSING = object()


class FunctionJob(Job):
    """The base of the Job classes `@job` generates: one call of a function, with its arguments
    as the job's attributes. Not a job by itself: only its generated subclasses are registered."""

    function: Callable[..., Any]
    """The decorated function (a staticmethod on each generated class)."""
    signature: inspect.Signature

    args: list[Any]
    kwargs: dict[str, Any]

    def handle(self) -> object:
        return self.function(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        args = [repr(a) for a in self.args]
        args += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{type(self).__name__}({', '.join(args)})"

    def _stored_values(self) -> Iterator[tuple[str, Any]]:
        """Each argument under its parameter's name, for push-time errors."""
        try:
            bound = self.signature.bind(*self.args, **self.kwargs).arguments
        except TypeError:
            bound = {**{str(i): a for i, a in enumerate(self.args)}, **self.kwargs}
        for name, value in bound.items():
            param = self.signature.parameters.get(name)
            if param is not None and param.kind is inspect.Parameter.VAR_POSITIONAL:
                for i, item in enumerate(value):
                    yield f"argument *{name}[{i}]", item
            elif param is not None and param.kind is inspect.Parameter.VAR_KEYWORD:
                for key, item in value.items():
                    yield f"argument {key!r}", item
            else:
                yield f"argument {name!r}", value


unregister(FunctionJob)  # a payload cannot name the base itself


class JobFunction(Generic[P, R]):
    """What `@job` returns: the function, callable as before, that can also be queued.

    `fn(...)` runs it here and now; `fn.push(...)` queues it and returns the job id;
    `fn.job(...)` makes the Job instance, for `qm.push(..., queue=...)`, `qm.later()` and
    `qm.push_many()` of any manager.
    """

    def __init__(self, function: Callable[P, R], job_class: type[FunctionJob]):
        self.__wrapped__ = function
        self.job_class = job_class
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<job function {self.job_class.job_name}>"

    def job(self, *args: P.args, **kwargs: P.kwargs) -> FunctionJob:
        """The job of one call with these arguments, checked against the function's
        signature (JobEncodeError if they do not fit); not queued yet."""
        return self._job(args, kwargs)

    def s(self, *args: P.args, **kwargs: P.kwargs) -> FunctionJob:
        """One call as a job not pushed yet, to join a `chain()` or `batch()` (a signature, as
        Celery calls it): the same as `fn.job(...)`."""
        return self._job(args, kwargs)

    def _job(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FunctionJob:
        cls = self.job_class
        try:
            cls.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise JobEncodeError(f"{cls.__name__}(): {exc}") from None
        job = cls.__new__(cls)
        job.args, job.kwargs = list(args), kwargs
        return job

    # With ParamSpec a keyword cannot follow P.args, so `manager=` gets overloads of its own:
    # the first checks the function's arguments, the second accepts them with `manager=`.
    @overload
    def push(self, *args: P.args, **kwargs: P.kwargs) -> str: ...
    @overload
    def push(self, *args: Any, manager: QueueManager, **kwargs: Any) -> str: ...
    def push(self, *args: Any, **kwargs: Any) -> str:
        """Queue a call; returns the job id. `manager=` picks the manager (else the current
        one: the worker's inside a job, else `jobpool.configure()`'s)."""
        manager = _manager(kwargs)
        return manager.push(self.job(*args, **kwargs))

    @overload
    def later(self, delay: Delay, /, *args: P.args, **kwargs: P.kwargs) -> str: ...
    @overload
    def later(self, delay: Delay, /, *args: Any, manager: QueueManager, **kwargs: Any) -> str: ...
    def later(self, delay: Delay, /, *args: Any, **kwargs: Any) -> str:
        """Queue a call to run after `delay` (seconds, timedelta, aware datetime)."""
        manager = _manager(kwargs)
        return manager.later(self.job(*args, **kwargs), delay)

    def push_many(self, calls: Iterable[Any], *, manager: QueueManager | None = None) -> list[str]:
        """Queue many calls: each a tuple (or list) of positional arguments, a dict of keyword
        arguments, or `fn.job(...)`. All are checked before any is stored."""
        jobs = [self._job_of(i, call) for i, call in enumerate(calls)]
        return (manager or current_manager()).push_many(jobs)

    @overload
    async def apush(self, *args: P.args, **kwargs: P.kwargs) -> str: ...
    @overload
    async def apush(self, *args: Any, manager: QueueManager, **kwargs: Any) -> str: ...
    async def apush(self, *args: Any, **kwargs: Any) -> str:
        """push() for async code: the round trip awaits on the running event loop."""
        manager = _manager(kwargs)
        return await manager.apush(self.job(*args, **kwargs))

    @overload
    async def alater(self, delay: Delay, /, *args: P.args, **kwargs: P.kwargs) -> str: ...
    @overload
    async def alater(
        self, delay: Delay, /, *args: Any, manager: QueueManager, **kwargs: Any
    ) -> str: ...
    async def alater(self, delay: Delay, /, *args: Any, **kwargs: Any) -> str:
        """later() for async code."""
        manager = _manager(kwargs)
        return await manager.alater(self.job(*args, **kwargs), delay)

    def _job_of(self, index: int, call: Any) -> Job:
        name = self.job_class.__name__
        if isinstance(call, (tuple, list)):
            return self._job(tuple(call), {})
        if isinstance(call, dict):
            return self._job((), dict(call))
        if isinstance(call, self.job_class):
            return call
        if isinstance(call, FunctionJob):
            raise JobEncodeError(
                f"{name}.push_many(): item {index} is a job of another function "
                f"({type(call).__name__}); push it with its own function or qm.push_many()"
            )
        raise JobEncodeError(
            f"{name}.push_many(): item {index} is {type(call).__name__}; give a tuple of "
            f"positional arguments, a dict of keyword arguments, or {name}.job(...)"
        )


def _manager(kwargs: dict[str, Any]) -> QueueManager:
    manager = kwargs.pop(RESERVED, None)
    return cast("QueueManager", manager) if manager is not None else current_manager()


@overload
def job(function: Callable[P, R], /) -> JobFunction[P, R]: ...
@overload
def job(
    *,
    queue: str | None = None,
    max_tries: int = ...,
    retry_delay: float = ...,
    timeout: float | None = ...,
    name: str | None = None,
    **settings: Any,
) -> Callable[[Callable[P, R]], JobFunction[P, R]]: ...
def job(function: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a job: `@job`, or `@job(queue=..., max_tries=..., retry_delay=...,
    timeout=..., name=...)`. Other keywords set the Job class attribute of that name.

    The job's registered name is `module:qualname`, or `name`. Its arguments must be JSON
    values, checked at push time; `manager` is reserved for the manager to push with.
    """
    if function is not None:
        return _make(function, {})
    for key in options:
        if key != "name" and not _is_setting(key):
            raise TypeError(f"@job() got an unknown option {key!r} (not a Job setting)")
    return lambda function: _make(function, options)


def _is_setting(key: str) -> bool:
    """True for a Job class attribute that is a setting (max_tries, queue, ...), not a method."""
    value = getattr(Job, key, _MISSING)
    return not key.startswith("_") and value is not _MISSING and not callable(value)


def _make(function: Callable[..., Any], options: dict[str, Any]) -> JobFunction[Any, Any]:
    signature = inspect.signature(function)
    if RESERVED in signature.parameters:
        raise TypeError(
            f"@job: {function.__qualname__} has a parameter {RESERVED!r}, which is reserved "
            f"(push(..., {RESERVED}=qm) picks the manager); rename it"
        )
    settings = {key: value for key, value in options.items() if key != "name"}
    name = options.get("name") or f"{function.__module__}:{function.__qualname__}"
    namespace = {
        "__module__": function.__module__,
        "__qualname__": function.__qualname__,
        "__doc__": function.__doc__,
        "function": staticmethod(function),
        "signature": signature,
        **settings,
    }
    job_class = cast(
        "type[FunctionJob]", type(function.__name__, (FunctionJob,), namespace, name=name)
    )
    return JobFunction(function, job_class)
