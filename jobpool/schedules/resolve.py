"""A schedule's job and arguments into what each tick pushes: the body, the first record, the
queue and, for a unique job, its key.

This needs the job classes, so it runs where the job modules are imported: in `jobpool check`,
in the master itself with `preload`, and otherwise in a short-lived `python -m
jobpool.schedules.resolve CONFIG` that the master starts at start-up and on SIGHUP (the master
never imports job code: a worker's code can change without it). Its answer is JSON on stdout.

A class's `args` go to its constructor (a table as keywords, an array as positions), which runs
once here: each tick pushes the attributes it set. A function's `args` are its call. The queue
is the schedule's `queue`, else the job's own `queue`, else `default_queue`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from jobpool import defaults
from jobpool.config import Config, ConfigError, load_config
from jobpool.config.reader import key_path
from jobpool.errors import JobEncodeError
from jobpool.functions import FunctionJob
from jobpool.job import Job, encode_job, import_job_modules, job_settings, registered
from jobpool.names import check_queue_name
from jobpool.retry import retry_policy
from jobpool.schedules.model import Schedule
from jobpool.unique import unique_options


@dataclass(frozen=True)
class Template:
    """What one schedule pushes at every tick (a fresh job id each time)."""

    name: str
    queue: str
    body: str
    record: dict[str, Any]
    unique_key: str | None = None
    unique_for: float = 0.0

    @property
    def unique(self) -> tuple[str, float] | None:
        return None if self.unique_key is None else (self.unique_key, self.unique_for)


def resolve(config: Config) -> dict[str, Template]:
    """The template of every schedule of `config`, its job modules imported already;
    ConfigError naming each schedule whose job or arguments do not resolve."""
    templates, problems = {}, []
    for name, schedule in config.schedules.items():
        try:
            templates[name] = _template(config, schedule)
        except _Problem as problem:
            where = key_path(key_path("schedules", name), problem.key)
            problems.append(f"{config.source}: {where}: {problem}")
    if problems:
        raise ConfigError(problems)
    return templates


class _Problem(Exception):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _template(config: Config, schedule: Schedule) -> Template:
    job = _build(schedule)
    queue = schedule.queue or getattr(job, "queue", None) or config.default_queue
    try:
        check_queue_name(queue)
        body = encode_job(job)
        max_tries, _, _ = job_settings(job)
        retry_policy(job)
        unique = unique_options(job, body, None, None)
    except (JobEncodeError, ValueError, TypeError) as exc:
        raise _Problem("args" if schedule.args is not None else "job", str(exc)) from None
    if len(body) > config.jobs.max_payload:
        raise _Problem(
            "args",
            f"the job's body is {len(body)} bytes, above max_payload "
            f"({config.jobs.max_payload} bytes)",
        )
    record = {
        "job": type(job).__name__,
        "queue": queue,
        "max_tries": max_tries,
        "schedule": schedule.name,
    }
    if unique is None:
        return Template(schedule.name, queue, body, record)
    record["unique_key"] = unique[0]
    return Template(schedule.name, queue, body, record, unique[0], unique[1])


def _build(schedule: Schedule) -> Job:
    cls = registered(schedule.job)
    if cls is None:
        raise _Problem(
            "job",
            f"unknown job {schedule.job!r}: no Job class or @job function registered under "
            "that name in the modules listed in `imports` (the name is 'module:QualName', or "
            "the `name` given to the class or to @job)",
        )
    args, kwargs = schedule.call()
    if issubclass(cls, FunctionJob):
        try:
            cls.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise _Problem("args", f"do not fit {schedule.job}: {exc}") from None
        job = cls.__new__(cls)
        job.args, job.kwargs = args, kwargs
        return job
    try:
        return cls(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's constructor: report whatever it raised
        raise _Problem(
            "args", f"{cls.__name__}(...) with these arguments raised {type(exc).__name__}: {exc}"
        ) from None


# -- across a process boundary -----------------------------------------------------------------


def resolve_elsewhere(
    config_path: str, timeout: float = defaults.SCHEDULE_RESOLVE_TIMEOUT
) -> dict[str, Template]:
    """resolve() in a new interpreter that imports the job modules (so this one need not):
    the templates, or ConfigError with what went wrong."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "jobpool.schedules.resolve", config_path],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            [f"{config_path}: schedules: importing the job modules took over {timeout:g}s"]
        ) from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ConfigError(
            [
                f"{config_path}: schedules: could not resolve their jobs "
                f"(exit {done.returncode}): {' / '.join(tail) or 'no output'}"
            ]
        ) from None
    if answer.get("problems"):
        raise ConfigError(answer["problems"])
    return {t["name"]: Template(**t) for t in answer["templates"]}


def _answer(config_path: str) -> dict[str, Any]:
    try:
        config = load_config(config_path)
        import_job_modules(config.imports)
        templates = resolve(config)
    except ConfigError as exc:
        return {"problems": exc.problems}
    except ImportError as exc:
        return {"problems": [f"{config_path}: {exc}"]}
    return {"templates": [asdict(t) for t in templates.values()]}


def main(argv: list[str]) -> int:
    """`python -m jobpool.schedules.resolve CONFIG`: prints {"templates": [...]} or
    {"problems": [...]} as JSON; the job modules' own output goes to stderr."""
    out = sys.stdout
    sys.stdout = sys.stderr  # a job module that prints must not spoil the answer
    out.write(json.dumps(_answer(argv[0])))
    out.flush()
    return 0


def templates_for(config: Config, config_path: str, in_process: bool) -> Mapping[str, Template]:
    """The templates of `config`'s schedules: here when the job modules are imported already
    (`preload`), else in a new interpreter. None to resolve: no process is started."""
    if not config.schedules:
        return {}
    if in_process:
        return resolve(config)
    return resolve_elsewhere(config_path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
