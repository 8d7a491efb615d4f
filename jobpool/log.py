"""Logging to stderr: human-readable lines, or one JSON object per line for log shippers.

Every line about a job carries its id, queue and name (`job_id`, `queue`, `job`: the class
or function name): the worker's own lines pass them as `extra` (the name as `job_class`), and
JobContextFilter adds them to every other line logged while a job runs, so that the job's own
loggers (the application's) carry them too.
"""

from __future__ import annotations

import json
import logging
import sys

from jobpool import defaults
from jobpool.context import running_delivery


class JobContextFilter(logging.Filter):
    """Sets the running job's `job_id`, `queue` and `job` (its class or function name) on each
    record logged while a worker runs it, whichever logger it comes from, so that a formatter
    can use %(job_id)s, %(queue)s and %(job)s. setup_logging() puts it on its handler; add it
    to a handler of your own to get the same fields there. Records about no job get none."""

    def filter(self, record: logging.LogRecord) -> bool:
        running = running_delivery()
        if running is not None and getattr(record, "job_id", None) is None:
            record.job_id, record.queue = running.id, running.queue
            record.job_class = running.job_class
        name = getattr(record, "job_class", None)  # as the worker's own lines name it
        if name is not None and getattr(record, "job", None) is None:
            record.job = name
        return True


def _job_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields of a line about a job, in JSON and in text (`job_id=... queue=... job=...`),
    whether JobContextFilter set them or the worker passed them as `extra` (which names the job
    `job_class`); none for a line about no job."""
    fields = {
        "job_id": getattr(record, "job_id", None),
        "queue": getattr(record, "queue", None),
        "job": getattr(record, "job", None) or getattr(record, "job_class", None),
    }
    return {name: value for name, value in fields.items() if value is not None}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{name}={value}" for name, value in _job_fields(record).items())
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {fields}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
            **_job_fields(record),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = defaults.LOG_LEVEL, fmt: str = defaults.LOG_FORMAT) -> None:
    """Configure the root logger once per process (the supervisor's children inherit it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
