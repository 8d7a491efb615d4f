--[[ begin: a worker begins a job it claimed earlier in a batch; its attempt counts from here.
KEYS[1] wip      LIST  job ids this worker holds
KEYS[2] state    HASH  job id -> record JSON
ARGV[1] job id
ARGV[2] worker id
Returns 1 if the job is now processing (or, for a failed job, its failed() hook is now marked
started), 0 if this worker does not hold it waiting to begin, -1 if it was cancelled while it
waited in the batch (it is dropped from the worker's list, and must not run).
Claiming begins only the first job of a batch, so that a worker that dies holding a batch costs
an attempt only to the job it was running, and loses only the hook it was running.
(The ack of the job before it usually begins it instead, in the same call.) ]]
-- @include common
return begin_job(KEYS[1], KEYS[2], ARGV[1], ARGV[2], now_ms(), true)
