"""A workflow turned into what one atomic push stores: each job's body and record (the later
steps and the callbacks `waiting`, the rest `queued`), and the workflow's own record.

Every job of a workflow runs on one queue: the Lua step that records a job's outcome moves the
next step (or a callback) into the ready list and counts the batch, and a script can only touch
the keys of one queue (one hash slot on Redis Cluster, see drivers/redis/keys.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobpool.ids import new_job_id
from jobpool.job import Job
from jobpool.unique import unique_options
from jobpool.workflows.model import Batch, Workflow

Entry = tuple[str, str, dict[str, Any]]  # (job id, body JSON, initial record), as enqueue takes


@dataclass(frozen=True)
class FlowPlan:
    """What `Driver.enqueue_flow` stores: the workflow's record under `field` of the queue's
    state ("chain:ID" or "batch:ID"), and its jobs, `ready[i]` telling whether entry i is
    queued now or waits for the workflow to release it."""

    id: str
    field: str
    queue: str
    record: dict[str, Any]
    entries: list[Entry]
    ready: list[bool]


def flow_field(kind: str, flow_id: str) -> str:
    """Where a workflow's record lives in its queue's state hash, next to the job records:
    "KIND:QUEUE:TOKEN" has two ':', a job id (QUEUE:TOKEN) one, so the two never meet."""
    return f"{kind}:{flow_id}"


def plan(
    flow: Workflow,
    queue: str | None,
    queue_name: Callable[[Job, str | None], str],
    prepare: Callable[[Job, str], Entry],
) -> FlowPlan:
    """`queue`: push()'s, which wins over the workflow's own; `queue_name` and `prepare`: the
    manager's (the queue a job goes to, and its checked entry)."""
    roles = flow.jobs()
    explicit = queue or flow.queue
    name = queue_name(roles[0][1], explicit)
    if explicit is None:
        _check_one_queue(flow.kind, roles, name)
    flow_id = new_job_id(name)
    field = flow_field(flow.kind, flow_id)
    entries: list[Entry] = []
    ready: list[bool] = []
    record: dict[str, Any] = {"kind": flow.kind, "queue": name}
    for index, (role, job) in enumerate(roles):
        entry = prepare(job, name)
        if unique_options(job, entry[1], None, None) is not None:
            raise ValueError(
                f"{flow.kind}: {type(job).__name__} is a unique job; unique keys do not apply "
                "inside a chain or batch"
            )
        job_record = entry[2]
        if role == "step":
            job_record.update(flow=field, step=index + 1)
        elif role == "member":
            job_record["flow"] = field
        else:  # a batch's callback: its outcome counts for nothing
            job_record.update(flow_cb=field, callback=role)
            record[role] = entry[0]
        entries.append(entry)
        ready.append(role == "member" or (role == "step" and index == 0))
    if isinstance(flow, Batch):
        n = len(flow.members)
        record.update(total=n, pending=n, completed=0, failed=0, cancelled=0)
    else:
        record["steps"] = [entry[0] for entry in entries]
    return FlowPlan(flow_id, field, name, record, entries, ready)


def _check_one_queue(kind: str, roles: list[tuple[str, Job]], name: str) -> None:
    for role, job in roles:
        own = getattr(job, "queue", None)
        if own and own != name:
            raise ValueError(
                f"{kind}: {type(job).__name__} ({role}) runs on queue {own!r}, the {kind} on "
                f"{name!r}; all jobs of a {kind} run on one queue (its steps are moved by the "
                f"Lua step that records each outcome, which touches one queue's keys): pass "
                f"queue= to {kind}() or push() to run them all on one queue"
            )
