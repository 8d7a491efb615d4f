"""Log lines about a job: the fields `job_id`, `queue` and `job` (its class or function name),
in JSON and in text, from the `extra` the worker passes (which names the job `job_class`)."""

from __future__ import annotations

import json
import logging
import sys

from jobpool.log import JsonFormatter, TextFormatter

WORKER_EXTRA = {"job_id": "emails:abc", "queue": "emails", "job_class": "send_email"}


def _record(extra: dict[str, str] | None = None, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    logger = logging.getLogger("jobpool.worker")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "completed in %.3fs", (0.5,), exc_info, extra=extra
    )


def test_json_lines_carry_job_id_queue_and_job():
    line = json.loads(JsonFormatter().format(_record(WORKER_EXTRA)))
    assert (line["job_id"], line["queue"], line["job"]) == ("emails:abc", "emails", "send_email")
    assert "job_class" not in line
    assert line["message"] == "completed in 0.500s"


def test_text_lines_end_with_job_id_queue_and_job():
    line = TextFormatter().format(_record(WORKER_EXTRA))
    assert line.endswith("completed in 0.500s job_id=emails:abc queue=emails job=send_email")


def test_the_fields_go_before_a_traceback_in_text_lines():
    head, _, tail = TextFormatter().format(_record(WORKER_EXTRA, exc=True)).partition("\n")
    assert head.endswith("job_id=emails:abc queue=emails job=send_email")
    assert tail.startswith("Traceback") and tail.endswith("ValueError: boom")


def test_lines_about_no_job_carry_no_job_fields():
    assert "job" not in TextFormatter().format(_record()).split("]: ", 1)[1]
    line = json.loads(JsonFormatter().format(_record()))
    assert not {"job_id", "queue", "job", "job_class"} & set(line)
