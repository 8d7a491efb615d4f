"""Workflows: chains (jobs one after the other) and batches (jobs side by side, with callbacks),
decided in Redis by the same Lua step that records each job's outcome (lua/includes/flows.lua).

`model` (what `chain()` and `batch()` build, checked), `plan` (a workflow turned into the
records and bodies one atomic push stores, and the workflow's record), `status` (a stored
workflow as `qm.get_job_status()` and `qm.batch_status()` show it).
"""

from jobpool.workflows.model import Batch, Chain, Workflow, batch, chain

__all__ = ["Batch", "Chain", "Workflow", "batch", "chain"]
