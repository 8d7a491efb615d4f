"""Logging to stderr: human-readable lines, or one JSON object per line for log shippers.

Every line about a job carries its id, queue and class: the worker's own lines pass them as
`extra`, and JobContextFilter adds them to every other line logged while a job runs, so that
the job's own loggers (the application's) carry them too.
"""

from __future__ import annotations

import json
import logging
import sys

from jobpool import defaults
from jobpool.context import running_delivery

JOB_FIELDS = (("job_id", "job"), ("queue", "queue"), ("job_class", "class"))


class JobContextFilter(logging.Filter):
    """Adds the running job's id, queue and name (see JOB_FIELDS) to each record logged while
    a worker runs it, whichever logger it comes from. setup_logging() puts it on its handler;
    add it to a handler of your own to get the same fields there."""

    def filter(self, record: logging.LogRecord) -> bool:
        running = running_delivery()
        if running is not None and getattr(record, "job_id", None) is None:
            record.job_id, record.queue = running.id, running.queue
            record.job_class = running.job_class
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(
            f"{label}={getattr(record, attr)}"
            for attr, label in JOB_FIELDS
            if getattr(record, attr, None) is not None
        )
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
        }
        for attr, _ in JOB_FIELDS:
            if getattr(record, attr, None) is not None:
                out[attr] = getattr(record, attr)
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
