"""Chains and batches on the in-memory driver: lua/includes/flows.lua in Python, called under
the driver's lock by the same steps that record a job's outcome. See flows.lua for the records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobpool.drivers.memory.driver import MemoryDriver


def flow_outcome(
    d: MemoryDriver, job_id: str, st: dict[str, Any], outcome: str, now: int, ttl_ms: int
) -> None:
    """A job of a workflow finished for good: count it, release what is due, finish the
    workflow when it is over. Marks `st` (the caller saves it)."""
    field = st.get("flow")
    if not field or st.get("flow_done"):
        return
    st["flow_done"] = 1
    fl = d._records.get(field)
    if fl is None or fl.get("status") != "processing":
        return  # over already (a chain cancelled)
    if fl["kind"] == "chain":
        ended = _chain_outcome(d, fl, int(st["step"]), outcome, now, ttl_ms)
    else:
        ended = _batch_outcome(d, fl, outcome, now, ttl_ms)
    if ended:
        fl.update(status=ended, finished_at=now, expires_at=now + ttl_ms)
    fl["updated_at"] = now


def _chain_outcome(
    d: MemoryDriver, fl: dict[str, Any], at: int, outcome: str, now: int, ttl_ms: int
) -> str | None:
    steps = fl["steps"]
    if outcome == "completed" and at < len(steps):
        _release_waiting(d, steps[at])
        return None
    for step in steps:
        _drop_waiting(d, step, now)
    return outcome


def _batch_outcome(
    d: MemoryDriver, fl: dict[str, Any], outcome: str, now: int, ttl_ms: int
) -> str | None:
    fl["pending"] -= 1
    if outcome == "completed":
        fl["completed"] += 1
    else:
        fl["failed"] += 1
        if outcome == "cancelled":
            fl["cancelled"] += 1
        if fl["failed"] == 1 and fl.get("catch"):
            _release_waiting(d, fl["catch"])
    if fl["pending"] > 0:
        return None
    ok = fl["failed"] == 0
    if fl.get("then"):
        if ok:
            _release_waiting(d, fl["then"])
        else:
            _drop_waiting(d, fl["then"], now)
    if ok and fl.get("catch"):
        _drop_waiting(d, fl["catch"], now)
    if fl.get("finally"):
        _release_waiting(d, fl["finally"])
    return "completed" if ok else "failed"


def _release_waiting(d: MemoryDriver, job_id: str) -> None:
    record = d._records.get(job_id)
    if record is None or record["status"] != "waiting":
        return  # cancelled by hand meanwhile
    d._save(job_id, record, status="queued")
    d._q(str(record["queue"])).ready.append(job_id)
    d._cond.notify_all()


def _drop_waiting(d: MemoryDriver, job_id: str, now: int) -> None:
    record = d._records.get(job_id)
    if record is not None and record["status"] == "waiting":
        d._cancel(job_id, record, now, flow=False)
