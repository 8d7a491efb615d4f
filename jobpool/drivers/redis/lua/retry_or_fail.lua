--[[ retry_or_fail: after a failed attempt, schedule the next one with backoff, or fail for good.
KEYS[1] wip      LIST  job ids this worker holds
KEYS[2] state    HASH  job id -> record JSON
KEYS[3] payload  HASH  job id -> body JSON
KEYS[4] delayed  ZSET  job id -> due time (ms)
KEYS[5] ready    LIST  job ids ready to run (and wake tokens)
KEYS[6] failed   ZSET  job id -> time it failed (ms)
KEYS[7] expire   ZSET  job id -> time its finished record is deleted (ms)
KEYS[8] stats    HASH  finished jobs per 10 s bucket ("done:B", "failed:B")
KEYS[9] workers  ZSET  worker id -> lease deadline (ms): how many may be waiting
ARGV[1] job id
ARGV[2] delay before the next attempt in ms
ARGV[3] error ("ExceptionType: message"), or '' to keep the recorded one
ARGV[4] traceback, or ''
ARGV[5] failed records' time to live in ms
ARGV[6] 1 to fail now whatever the attempts (the job cannot run at all), else 0
ARGV[7] how many expired records to prune in passing
Returns -1 if this worker no longer held the job, 1 if it will be retried, 2 if it failed, 3 if
it was cancelled (cancel.lua asked it to stop while it ran: no retry, no failed() hook).
The attempt count decides here, atomically, so a worker never has to trust a stale copy. ]]
-- @include common
local now = now_ms()
local id = ARGV[1]
if redis.call('LREM', KEYS[1], -1, id) == 0 then return -1 end
local st = load_state(KEYS[2], id) or {}
if ARGV[3] ~= '' then note_error(st, ARGV[3], ARGV[4], now) end
if stop_requested(st) then  -- cancelled while it ran: no retry, no failed() hook
  mark_cancelled(KEYS[2], KEYS[7], id, st, now, tonumber(ARGV[5]), KEYS[5])
  return 3
end
st['worker'] = nil
local was_failed = st['status'] == 'failed'  -- a failed() hook delivery: only finish it
if not was_failed and ARGV[6] == '0' and (st['attempts'] or 0) < (st['max_tries'] or 1) then
  local due = due_after(tonumber(ARGV[2]))
  st['status'] = 'retrying'
  st['due_at'] = due
  save_state(KEYS[2], id, st, now)
  schedule(KEYS[4], KEYS[5], KEYS[9], id, due)
  return 1
end
st['hook'] = nil
if was_failed then
  save_state(KEYS[2], id, st, now)
else
  mark_failed(KEYS[2], KEYS[6], KEYS[7], KEYS[8], id, st, now, tonumber(ARGV[5]), KEYS[5])
end
prune(KEYS[7], KEYS[6], KEYS[2], KEYS[3], now, tonumber(ARGV[7]))
return 2
