--[[ requeue: hand back the jobs of a worker that died, counting the attempt each was running.
KEYS[1] workers  ZSET  worker id -> lease deadline (ms)
KEYS[2] wip      LIST  job ids the dead worker held
KEYS[3] ready    LIST  job ids ready to run (and wake tokens)
KEYS[4] state    HASH  job id -> record JSON
KEYS[5] failed   ZSET  job id -> time it failed (ms)
KEYS[6] expire   ZSET  job id -> time its finished record is deleted (ms)
KEYS[7] stats    HASH  finished jobs per 10 s bucket ("done:B", "failed:B")
ARGV[1] worker id
ARGV[2] reason, recorded as the attempt's error ("worker killed by signal 9")
ARGV[3] failed records' time to live in ms
ARGV[4] 1 to act only if the lease has expired (a peer reaping), 0 when the supervisor saw it die
ARGV[5] 1 to count the running attempt (a death), 0 not to (a shutdown killed it past its grace)
Returns {-1} if the lease is still live, else {the number of jobs handed back, then per job this
call failed for good: id, job class}.
A job out of attempts ends failed here but is also queued once more (counted as handed back),
its record's `hook` pending (see common.lua), so that a worker runs its failed() hook: user code
never runs in the supervisor. A worker that dies inside a started hook leaves the job failed
without the hook, so a poison job cannot loop; a hook entry claimed behind the job that was
running has not started, and goes back to the queue like any job of the batch. A running job
that cancel.lua asked to stop ends cancelled instead, whatever ARGV[5] says (its worker was killed
for it, or died meanwhile); a batch job cancelled while it waited is dropped. ]]
-- @include common
local now = now_ms()
if ARGV[4] == '1' then
  local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if deadline and tonumber(deadline) >= now then return {-1} end
end
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])  -- freeing first: a full server still takes a requeue
local out = {0}
for i = #ids, 1, -1 do
  local id = ids[i]
  local st = load_state(KEYS[4], id)
  if not st then  -- a wake token, or a job deleted meanwhile: nothing to hand back
  elseif ARGV[5] == '1' and st['status'] == 'failed' and st['hook'] == HOOK_STARTED then
    st['hook'] = nil  -- it died inside the failed() hook: never run that hook again
    st['hook_error'] = ARGV[2]
    st['worker'] = nil
    save_state(KEYS[4], id, st, now)
  elseif stop_requested(st) then
    mark_cancelled(KEYS[4], KEYS[6], id, st, now, tonumber(ARGV[3]), KEYS[3])  -- for its cancel
  elseif ARGV[5] == '0' or st['status'] ~= 'processing' then
    hand_back(KEYS[3], KEYS[4], id, now)  -- a shutdown, or claimed in a batch but not begun
    out[1] = out[1] + 1
  else
    st['worker'] = nil
    note_error(st, ARGV[2], nil, now)
    if (st['attempts'] or 0) >= (st['max_tries'] or 1) then
      st['hook'] = HOOK_PENDING
      mark_failed(KEYS[4], KEYS[5], KEYS[6], KEYS[7], id, st, now, tonumber(ARGV[3]), KEYS[3])
      out[#out + 1] = id
      out[#out + 1] = tostring(st['job'] or '?')
    else
      st['status'] = 'queued'
      save_state(KEYS[4], id, st, now)
    end
    redis.call('LPUSH', KEYS[3], id)
    out[1] = out[1] + 1
  end
end
redis.call('ZREM', KEYS[1], ARGV[1])
return out
