"""The original PHP examples in their Python form (jobpool/examples.py), on both drivers."""

from __future__ import annotations

from jobpool import Worker
from jobpool.examples import ProcessOrderJob, SendEmailJob


def test_integration_push_pop_process_completed(qm):
    """The original integration test, as written: push, pop, process, status completed."""
    job_id = qm.push(SendEmailJob("user@example.com", "Welcome", "Hello"))
    payload = qm.pop()
    Worker(qm).process(payload)
    assert qm.get_job_status(job_id)["status"] == "completed"


def test_send_email_job_defaults_and_failure(qm, caplog):
    job = SendEmailJob("not-an-address", "Hi", "...")
    assert (job.max_tries, job.retry_delay) == (3, 60)
    job.max_tries = 1
    job_id = qm.push(job)
    Worker(qm).process(qm.pop())
    status = qm.get_job_status(job_id)
    assert status["status"] == "failed"
    assert status["error"] == "ValueError: not an email address: 'not-an-address'"
    assert "giving up on email to not-an-address" in caplog.text


def test_process_order_pushes_a_confirmation_from_handle(qm):
    order = qm.push(ProcessOrderJob(42, "ada@example.com", 99.5))
    Worker(qm).process(qm.pop())
    assert qm.get_job_status(order)["status"] == "completed"
    follow = qm.pop("emails")
    assert follow is not None and follow.job_class == "SendEmailJob"
    assert b'"to":"ada@example.com"' in follow.body and b"Order 42 confirmed" in follow.body


def test_process_order_tells_support_from_failed(qm):
    order = ProcessOrderJob(7, "bob@example.com", -1)
    order.retry_delay = 0
    order_id = qm.push(order)
    worker = Worker(qm, "default")
    while (delivery := qm.pop(timeout=1)) is not None:
        worker.process(delivery)
    assert qm.get_job_status(order_id)["status"] == "failed"
    assert qm.get_job_status(order_id)["attempts"] == 2
    alert = qm.pop("emails")
    assert alert is not None and b"support@example.com" in alert.body
    assert b"Order 7 failed" in alert.body and b"amount must be positive" in alert.body
    assert qm.pop("emails") is None  # failed() ran once: one alert
