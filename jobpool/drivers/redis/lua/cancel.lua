--[[ cancel: a job that waits never runs; a job that runs is asked to stop.
KEYS[1] ready    LIST  job ids ready to run (and wake tokens)
KEYS[2] delayed  ZSET  job id -> due time (ms)
KEYS[3] state    HASH  job id -> record JSON
KEYS[4] expire   ZSET  job id -> time its finished record is deleted (ms)
ARGV[1] job id
ARGV[2] cancelled records' time to live in ms
Returns 1 if the job waited (queued, delayed or retrying) and is now cancelled; 2 if it is
processing and is now asked to stop; 0 if it is unknown or already finished.
A job asked to stop keeps running until its master kills its worker (requeue.lua then records it
cancelled) or its code fails (retry_or_fail.lua records it cancelled, not retried); record field
`cancel_requested_at`. A queued job that is not in the ready list was claimed in a worker's
batch and has not begun: it is cancelled all the same, and dropped when its worker reaches it
(begin_job, hand_back in common.lua). ]]
-- @include common
local now = now_ms()
local id = ARGV[1]
local st = load_state(KEYS[3], id)
if not st or not WAITING_OR_RUNNING[st['status']] then return 0 end
if st['status'] == 'processing' then
  if not st['cancel_requested_at'] then
    st['cancel_requested_at'] = now
    save_state(KEYS[3], id, st, now)
  end
  return 2
end
redis.call('LREM', KEYS[1], 0, id)
redis.call('ZREM', KEYS[2], id)
mark_cancelled(KEYS[3], KEYS[4], id, st, now, tonumber(ARGV[2]), KEYS[1])
return 1
