-- Shared helpers, inlined by scripts.py wherever a script says "@include common".
-- Times are integer milliseconds from the Redis server clock, so every host agrees on "now".
-- Job records are JSON objects in the queue's state hash; see README "Key layout".
--
-- A full server (maxmemory, noeviction) refuses a command that may grow memory (HSET, RPUSH,
-- ZADD, HINCRBY, ...) only as a script's first write: once a script has written, it runs to its
-- end. Commands that free memory (LPOP, LREM, DEL, HDEL, ZREM) are never refused. So every
-- script a worker or the master runs on the job path frees first (a lease or a record is
-- replaced by removing it, then writing it), and a full server still drains; only enqueue,
-- which can only add, is refused.
local WAKE = '~wake'  -- in the ready list, wakes idle workers; never a job id (scripts.WAKE)

-- The record field `hook` of a job failed for good by its worker's death, whose failed() hook a
-- worker must still run: HOOK_PENDING while its entry waits in the queue or sits claimed behind
-- another job of a batch, HOOK_STARTED once a worker began it (with the claim, first in its
-- batch, or later with begin_job). A worker that dies in a started hook loses that hook; a
-- pending one goes back to the queue. No field once the hook ran, or was given up.
local HOOK_PENDING = 1
local HOOK_STARTED = 2  -- both as in drivers/base.py; tests/test_lua_scripts.py checks it

-- The statuses of a job that waits or runs (drivers/base.py WAITING_OR_RUNNING): such a job holds
-- its unique key, and can be cancelled. Any other (completed, failed, cancelled) is finished.
-- `waiting`: a workflow's job that waits for its turn (see flows.lua).
local WAITING_OR_RUNNING = {queued = true, delayed = true, retrying = true, processing = true, waiting = true}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The next whole ms: due times count from here, so that flooring to ms never makes a job due
-- before `delay` has fully passed.
local function due_after(delay_ms)
  if delay_ms <= 0 then return now_ms() end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000) + delay_ms
end

local function load_state(state_key, id)
  local raw = redis.call('HGET', state_key, id)
  if not raw then return nil end
  return cjson.decode(raw)
end

-- Returns the JSON it stored.
local function save_state(state_key, id, st, now)
  st['updated_at'] = now
  local raw = cjson.encode(st)
  redis.call('HSET', state_key, id, raw)
  return raw
end

-- Record an attempt's error: as the job's `error` and `traceback`, and in its `errors`, the
-- last ERRORS_KEPT attempts' errors, each with its attempt, time and traceback's end (the
-- dashboard's timeline). Kept short: every state change decodes and encodes the record.
local ERRORS_KEPT = 10
local TRACEBACK_KEPT = 2000
local function note_error(st, err, tb, now)
  st['error'] = err
  st['traceback'] = tb
  local errors = st['errors'] or {}
  errors[#errors + 1] = {
    attempt = st['attempts'] or 0, error = err, at = now,
    traceback = tb and string.sub(tb, -TRACEBACK_KEPT) or nil,
  }
  while #errors > ERRORS_KEPT do table.remove(errors, 1) end
  st['errors'] = errors
end

-- Schedule id at `due`; wake the idle workers when it becomes the earliest due job, since they
-- are blocked with a timeout computed from the previous earliest. A non-empty ready list means no
-- worker is blocked, so no token is needed then. Each blocked worker takes one token (the wait
-- moves it into the worker's own list), so there is one per live worker; tokens nobody took are
-- dropped by the next fetch.
local function schedule(delayed_key, ready_key, workers_key, id, due)
  local first = redis.call('ZRANGE', delayed_key, 0, 0, 'WITHSCORES')
  redis.call('ZADD', delayed_key, due, id)
  if (first[1] == nil or due < tonumber(first[2])) and redis.call('LLEN', ready_key) == 0 then
    for _ = 1, math.min(math.max(redis.call('ZCARD', workers_key), 1), 1000) do
      redis.call('RPUSH', ready_key, WAKE)
    end
  end
end

-- Drop completed and failed records whose time to live has passed, a few per call, so that
-- cleaning up costs nothing extra in a round trip and never blocks the server for long.
local function prune(expire_key, failed_key, state_key, payload_key, now, limit)
  local old = redis.call('ZRANGEBYSCORE', expire_key, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(old) do
    redis.call('HDEL', state_key, id)
    redis.call('HDEL', payload_key, id)
    redis.call('ZREM', failed_key, id)
  end
  if #old > 0 then redis.call('ZREM', expire_key, unpack(old)) end
end

-- Set a worker's lease deadline. Removing the entry first makes this a freeing first write,
-- so a full server still takes it: a refused renewal would let live workers' leases lapse.
local function set_lease(workers_key, wid, deadline)
  redis.call('ZREM', workers_key, wid)
  redis.call('ZADD', workers_key, deadline, wid)
end

-- Hand a claimed job back to the front of the ready list without counting the attempt: it was
-- claimed but never run to an outcome (shutdown, or a claim whose reply never arrived). A
-- failed() hook handed back is pending again; a job cancelled meanwhile is dropped.
local function hand_back(ready_key, state_key, id, now)
  local st = load_state(state_key, id)
  if not st or st['status'] == 'cancelled' then return end  -- cancelled while claimed: dropped
  if st['status'] == 'processing' then
    st['attempts'] = math.max((st['attempts'] or 1) - 1, 0)
    st['status'] = 'queued'
    st['worker'] = nil
    save_state(state_key, id, st, now)
  elseif st['hook'] == HOOK_STARTED then
    st['hook'] = HOOK_PENDING
    save_state(state_key, id, st, now)
  end
  redis.call('LPUSH', ready_key, id)
end

-- Mark a record begun by worker `wid`: a job as processing, its attempt counted; a failed job's
-- pending failed() hook as started. Does not save `st`.
local function mark_begun(st, wid, now)
  if st['status'] == 'failed' then
    st['hook'] = HOOK_STARTED
  else
    st['status'] = 'processing'
    st['attempts'] = (st['attempts'] or 0) + 1
    st['worker'] = wid
    st['started_at'] = now
  end
end

-- Begin a job this worker claimed in a batch: its attempt counts from here; or, for a failed
-- job, mark its failed() hook started. Returns 1 if it began now, 0 if the worker does not
-- hold it waiting to begin, -1 if it was cancelled while it waited in the batch: it is dropped
-- from the worker's list and must not run.
local function begin_job(wip_key, state_key, id, wid, now, first_write)
  if not redis.call('LPOS', wip_key, id) then return 0 end
  local st = load_state(state_key, id)
  if st and st['status'] == 'cancelled' then
    redis.call('LREM', wip_key, -1, id)
    return -1
  end
  if not st or st['status'] == 'processing' then return 0 end
  if st['status'] == 'failed' and st['hook'] ~= HOOK_PENDING then return 0 end
  mark_begun(st, wid, now)
  -- As a script's first write, replace the record rather than overwrite it: a delete frees
  -- memory, so a full server lets the script go on.
  if first_write then redis.call('HDEL', state_key, id) end
  save_state(state_key, id, st, now)
  return 1
end

-- Count finished jobs in 10-second buckets of the queue's stats hash ("done:BUCKET",
-- "failed:BUCKET"), for "jobs done in the last minute". The first count of a new bucket drops
-- the buckets older than two minutes, so the hash stays a few fields long.
local function count_finished(stats_key, kind, n, now)
  local bucket = math.floor(now / 10000)
  local field = kind .. ':' .. bucket
  if redis.call('HINCRBY', stats_key, field, n) == n then
    for _, old in ipairs(redis.call('HKEYS', stats_key)) do
      local b = tonumber(string.match(old, ':(%d+)$'))
      if b and b < bucket - 12 then redis.call('HDEL', stats_key, old) end
    end
  end
end

-- Release the unique key a job holds, once it completed, failed for good or was cancelled, so
-- that the next push with that key queues a new job. The key is named by the job's record
-- (`unique_lock`, written by enqueue from its KEYS), not among the calling script's KEYS: it
-- carries the queue's hash tag (QueueKeys.unique), so the script stays in one Cluster slot. A
-- key another job holds by now (the hold lapsed and passed on) is left alone.
local function release_unique(id, st)
  local lock = st['unique_lock']
  if lock and redis.call('GET', lock) == id then redis.call('DEL', lock) end
end

-- Record a job cancelled (see mark_cancelled), leaving any workflow it is in alone.
local function cancel_record(state_key, expire_key, id, st, now, ttl_ms)
  local expires = now + ttl_ms
  st['status'] = 'cancelled'
  st['worker'] = nil
  st['due_at'] = nil
  st['finished_at'] = now
  st['expires_at'] = expires
  save_state(state_key, id, st, now)
  redis.call('ZADD', expire_key, expires, id)
  release_unique(id, st)
  if st['notify'] then redis.call('PUBLISH', st['notify'], id) end  -- wakes qm.result()
end

-- @include flows

-- Cancel a job: it does not run (again), whatever attempts are left, and its failed() hook is
-- not called. Its record and body are kept `ttl_ms` (failed_ttl), as a failed job's are, then
-- pruned. A chain it is in stops; a batch counts it. `ready_key`: where a workflow's next job
-- goes (a script that may cancel a workflow's job declares it). Saves `st`.
local function mark_cancelled(state_key, expire_key, id, st, now, ttl_ms, ready_key)
  flow_outcome(state_key, ready_key, expire_key, id, st, 'cancelled', now, ttl_ms)
  cancel_record(state_key, expire_key, id, st, now, ttl_ms)
end

-- Whether a job that was running, and now has an outcome, was asked to stop (cancel.lua): then
-- the outcome is `cancelled`, not a retry or a failure.
local function stop_requested(st)
  return st['status'] == 'processing' and st['cancel_requested_at'] ~= nil
end

-- Fail a job for good: the one place that does, so that every way to fail (its code raised, or
-- its worker died on its last attempt) leaves the same record and counts the same, in a
-- workflow too (`ready_key` as for mark_cancelled). Saves `st`.
local function mark_failed(state_key, failed_key, expire_key, stats_key, id, st, now, ttl_ms,
                           ready_key)
  flow_outcome(state_key, ready_key, expire_key, id, st, 'failed', now, ttl_ms)
  local expires = now + ttl_ms
  st['status'] = 'failed'
  st['worker'] = nil
  st['finished_at'] = now
  st['expires_at'] = expires
  save_state(state_key, id, st, now)
  redis.call('ZADD', failed_key, now, id)
  redis.call('ZADD', expire_key, expires, id)
  count_finished(stats_key, 'failed', 1, now)
  release_unique(id, st)
  if st['notify'] then redis.call('PUBLISH', st['notify'], id) end  -- wakes qm.result()
end
