--[[ enqueue_flow: store a workflow (a chain or a batch, see includes/flows.lua) and all of its
jobs at once: the first step or every batch job ready now, later steps and callbacks waiting.
KEYS[1] ready    LIST  job ids ready to run (and wake tokens)
KEYS[2] state    HASH  job id -> record JSON; "chain:ID" / "batch:ID" -> the workflow's record
KEYS[3] payload  HASH  job id -> body JSON
KEYS[4] flows    ZSET  workflow field -> time it was pushed (ms): the index `jobpool stats` reads
ARGV[1] the workflow's field in the state hash ("chain:ID" or "batch:ID")
ARGV[2] the workflow's record JSON (an object; status and times are added here)
ARGV[3] how many of the oldest indexed workflows to look at, dropping the finished ones
ARGV[4..] quadruples: job id, body, initial record JSON (an object with at least one field),
          '1' if the job is ready now, '0' if it waits for the workflow to release it
Returns 1 if stored, 0 if the workflow exists already (a producer resending a push whose reply
it lost stores nothing twice). ]]
-- @include common
local now = now_ms()
local field = ARGV[1]
if redis.call('HEXISTS', KEYS[2], field) == 1 then return 0 end
for _, old in ipairs(redis.call('ZRANGE', KEYS[4], 0, tonumber(ARGV[3]) - 1)) do
  local fl = load_state(KEYS[2], old)
  if not fl or fl['status'] ~= 'processing' then redis.call('ZREM', KEYS[4], old) end
end
local fl = cjson.decode(ARGV[2])
fl['status'] = 'processing'
fl['created_at'] = now
save_state(KEYS[2], field, fl, now)
redis.call('ZADD', KEYS[4], now, field)
local ready = {}
for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  redis.call('HSET', KEYS[3], id, ARGV[i + 1])
  local status = ARGV[i + 3] == '1' and 'queued' or 'waiting'
  local head = '{"attempts":0,"created_at":' .. now .. ',"updated_at":' .. now
  local record = head .. ',"status":"' .. status .. '",' .. string.sub(ARGV[i + 2], 2)
  redis.call('HSET', KEYS[2], id, record)
  if status == 'queued' then ready[#ready + 1] = id end
end
for i = 1, #ready, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ready, i, math.min(i + 999, #ready)))
end
return 1
