-- Workflows (jobpool/workflows/): chains and batches, moved on by the script that records each
-- job's outcome (ack.lua, mark_failed and mark_cancelled in common.lua), in the same atomic step.
-- Included by common.lua, before mark_cancelled and mark_failed, which call flow_outcome.
--
-- A workflow's record is a field of the queue's state hash, "chain:ID" or "batch:ID" (its id is
-- QUEUE:TOKEN like a job's; a job id has one ':', such a field two). Its jobs' records name it:
-- `flow` for a chain's steps and a batch's jobs, `flow_cb` for a batch's callbacks, which count
-- for nothing. A later step or a callback is stored up front with status `waiting`, in no list,
-- its body in the payload hash; the workflow moves it into the ready list when it is due, or
-- records it cancelled when it never will be. `flow_done` on a job's record: its outcome was
-- counted (a failed job retried by hand is not counted twice).
--   chain: {kind, queue, steps = [ids], status, created_at, ...}
--   batch: {kind, queue, total, pending, completed, failed, cancelled, then, catch, finally,
--           status, created_at, ...}; failed counts the cancelled jobs too.
-- status: processing, then completed, failed or cancelled (a chain); completed or failed (a
-- batch). A finished record is pruned with the jobs' (expire zset).
--
-- One function, its helpers inside it: a script defines its local functions on every call, so
-- a plain job's ack pays for one definition here, not for every helper.

-- A job of a workflow finished for good (`outcome`: completed, failed or cancelled): count it,
-- release what is due, and finish the workflow when it is over. Marks `st` (not saved here:
-- the caller saves it). A plain job costs one table lookup.
local function flow_outcome(state_key, ready_key, expire_key, id, st, outcome, now, ttl_ms)
  local field = st['flow']
  if not field or st['flow_done'] then return end
  st['flow_done'] = 1
  local fl = load_state(state_key, field)
  if not fl or fl['status'] ~= 'processing' then return end  -- over already (a chain cancelled)
  if not ready_key then error('flow_outcome: the script does not declare the ready key') end

  local function release(job)  -- a waiting job becomes ready
    local js = load_state(state_key, job)
    if not js or js['status'] ~= 'waiting' then return end  -- cancelled by hand meanwhile
    js['status'] = 'queued'
    save_state(state_key, job, js, now)
    redis.call('RPUSH', ready_key, job)  -- wakes an idle worker blocked on the list
  end

  local function drop(job)  -- a waiting job that will never run
    local js = load_state(state_key, job)
    if js and js['status'] == 'waiting' then
      cancel_record(state_key, expire_key, job, js, now, ttl_ms)
    end
  end

  local ended
  if fl['kind'] == 'chain' then
    local steps, at = fl['steps'], st['step']
    if outcome == 'completed' and at < #steps then
      release(steps[at + 1])
    else
      for i = 1, #steps do drop(steps[i]) end
      ended = outcome
    end
  else
    fl['pending'] = fl['pending'] - 1
    if outcome == 'completed' then
      fl['completed'] = fl['completed'] + 1
    else
      fl['failed'] = fl['failed'] + 1
      if outcome == 'cancelled' then fl['cancelled'] = fl['cancelled'] + 1 end
      if fl['failed'] == 1 and fl['catch'] then release(fl['catch']) end
    end
    if fl['pending'] == 0 then
      local ok = fl['failed'] == 0
      if fl['then'] then
        if ok then release(fl['then']) else drop(fl['then']) end
      end
      if ok and fl['catch'] then drop(fl['catch']) end
      if fl['finally'] then release(fl['finally']) end
      ended = ok and 'completed' or 'failed'
    end
  end
  if ended then
    fl['status'] = ended
    fl['finished_at'] = now
    fl['expires_at'] = now + ttl_ms
    redis.call('ZADD', expire_key, now + ttl_ms, field)
  end
  save_state(state_key, field, fl, now)
end
