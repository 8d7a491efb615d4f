"""A stored workflow as users see it: `qm.get_job_status(id)` of a chain or batch, and
`qm.batch_status(id)`. Both drivers read the records; this shapes them, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobpool.drivers.base import public_record

KINDS = ("chain", "batch")


def flow_status(
    flow_id: str, record: dict[str, Any], jobs: Mapping[str, dict[str, Any] | None]
) -> dict[str, Any]:
    """The workflow's record, times in unix seconds; a chain lists its `steps` (id, job class,
    status: "expired" once a step's record is gone), a batch gains `progress` (the share of
    its jobs that finished, 0.0 to 1.0) and its callbacks' statuses (`callbacks`). `jobs`: the
    stored records of the steps or callbacks, by id."""
    out = public_record(flow_id, record)
    if record.get("kind") == "chain":
        out["steps"] = [_brief(i, jobs.get(i)) for i in record.get("steps", [])]
    else:
        total = int(record.get("total", 0))
        out["progress"] = (total - int(record.get("pending", 0))) / total if total else 1.0
        roles = [role for role in ("then", "catch", "finally") if role in record]
        out["callbacks"] = {role: _brief(record[role], jobs.get(record[role])) for role in roles}
    return out


def related_ids(record: dict[str, Any]) -> list[str]:
    """The jobs whose records a status shows: a chain's steps, a batch's callbacks."""
    if record.get("kind") == "chain":
        return [str(i) for i in record.get("steps", [])]
    return [str(record[role]) for role in ("then", "catch", "finally") if role in record]


def _brief(job_id: str, record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"id": job_id, "status": "expired"}
    brief = {"id": job_id, "job": record.get("job"), "status": record.get("status")}
    if record.get("error"):
        brief["error"] = record["error"]
    return brief
