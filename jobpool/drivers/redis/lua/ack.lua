--[[ ack: record jobs as completed by the worker that holds them, then begin its next job.
KEYS[1] wip      LIST  job ids this worker holds
KEYS[2] state    HASH  job id -> record JSON
KEYS[3] payload  HASH  job id -> body JSON
KEYS[4] expire   ZSET  job id -> time its finished record is deleted (ms)
KEYS[5] failed   ZSET  job id -> time it failed (ms)
KEYS[6] stats    HASH  finished jobs per 10 s bucket ("done:B", "failed:B")
KEYS[7] ready    LIST  job ids ready to run: a workflow's next job goes there (flows.lua)
ARGV[1] completed records' time to live in ms
ARGV[2] how many expired records to prune in passing
ARGV[3] the id of the job the worker begins next ('' for none), as the begin script does
ARGV[4] worker id
ARGV[5..] pairs: job id, what the job returned as JSON ('' for nothing)
Returns per id 1 if acked, 0 if this worker no longer held it (its lease expired and the job was
handed to another worker: that worker's outcome wins), -1 if it was cancelled before its begin
reached Redis (a batch's begins are pipelined: the job ran, its record stays cancelled); then 1 if the next job began, 0 if not,
-1 if it was cancelled while it waited. A completed job's unique key, if any, is released.
A worker runs its jobs one after the other, so finishing one and beginning the next is one call:
half the round trips and script calls of doing them apart.
The result goes into the record as its `result` field, spliced in as the JSON text the worker
made: a trip through cjson would turn [] into {} and round floats. A producer waiting for the
job (qm.result(), see watch.lua) has put a channel in the record's `notify`: the job's id is
published on it. A job of a chain or batch moves its workflow on (flow_outcome in flows.lua). ]]
-- @include common
local now = now_ms()
local expires = now + tonumber(ARGV[1])
local out = {}
local acked = 0
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local held = redis.call('LREM', KEYS[1], -1, id)
  if held == 1 then
    local st = load_state(KEYS[2], id) or {}
    local notify = st['notify']
    st['status'] = 'completed'
    st['worker'] = nil
    st['finished_at'] = now
    st['expires_at'] = expires
    st['notify'] = nil
    st['result'] = nil
    if st['flow'] then
      flow_outcome(KEYS[2], KEYS[7], KEYS[4], id, st, 'completed', now, tonumber(ARGV[1]))
    end
    if ARGV[i + 1] == '' then
      save_state(KEYS[2], id, st, now)
    else
      st['updated_at'] = now
      local record = string.sub(cjson.encode(st), 1, -2) .. ',"result":' .. ARGV[i + 1] .. '}'
      redis.call('HSET', KEYS[2], id, record)
    end
    if notify then redis.call('PUBLISH', notify, id) end
    release_unique(id, st)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZADD', KEYS[4], expires, id)
    acked = acked + 1
  else
    local st = load_state(KEYS[2], id)
    if st and st['status'] == 'cancelled' then held = -1 end
  end
  out[#out + 1] = held
end
if acked > 0 then count_finished(KEYS[6], 'done', acked, now) end
prune(KEYS[4], KEYS[5], KEYS[2], KEYS[3], now, tonumber(ARGV[2]))
out[#out + 1] = ARGV[3] ~= '' and begin_job(KEYS[1], KEYS[2], ARGV[3], ARGV[4], now) or 0
return out
