"""`qm.result()` and `qm.cancel()` given a chain's id: a chain's result is its last step's, and
cancelling a chain cancels what is left of it. A batch's record counts its jobs but does not list
them, so these refuse a batch's id and say where to look instead (`batch_status()`)."""

from __future__ import annotations

import time
from typing import Any

from jobpool.drivers.base import FINISHED, Cancel, Driver
from jobpool.errors import JobFailed

WAITING = ("queued", "delayed", "retrying", "waiting")


def not_a_batch(flow_id: str, flow: dict[str, Any], what: str) -> None:
    if flow.get("kind") == "batch":
        raise ValueError(
            f"{flow_id} is a batch: {what} takes a job's or a chain's id; a batch's record "
            "counts its jobs without listing them (see batch_status())"
        )


def chain_result(driver: Driver, chain_id: str, flow: dict[str, Any], timeout: float | None) -> Any:
    """What the chain's last step returned, waiting up to `timeout` seconds for the chain to
    finish. A step that failed for good or was cancelled ends the chain: JobFailed then names
    that step (its id, error and traceback), not the steps after it, cancelled with the chain."""
    started = time.monotonic()
    last = flow["steps"][-1]["id"]
    record = driver.wait_finished(last, timeout)
    if record is not None and record["status"] == "completed":
        return record.get("result")
    flow = driver.flow(chain_id) or flow
    if flow["status"] not in FINISHED:
        waited = time.monotonic() - started
        raise TimeoutError(f"chain {chain_id} is still {flow['status']} after {waited:.3g}s")
    for step in flow["steps"]:
        if step["status"] != "completed":
            stopped = driver.status(step["id"]) or {"status": step["status"]}
            raise JobFailed(step["id"], stopped)
    raise JobFailed(chain_id, flow)  # pragma: no cover - a finished chain completed a step less


def cancel_chain(driver: Driver, flow: dict[str, Any]) -> bool:
    """Cancel the chain's first step that waits, which ends the chain and cancels the steps
    after it, then ask a step that runs to stop. True if anything was cancelled."""
    steps = flow["steps"]
    cancelled = False
    waiting = next((s for s in steps if s["status"] in WAITING), None)
    if waiting is not None:
        cancelled = driver.cancel(waiting["id"]) is not Cancel.NOTHING
    for step in steps:
        if step["status"] == "processing":
            cancelled = driver.cancel(step["id"]) is not Cancel.NOTHING or cancelled
    return cancelled
