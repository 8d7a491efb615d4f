--[[ enqueue: store new jobs and make them ready now, or due later.
KEYS[1] ready    LIST  job ids ready to run (and wake tokens)
KEYS[2] delayed  ZSET  job id -> due time (ms)
KEYS[3] state    HASH  job id -> record JSON
KEYS[4] payload  HASH  job id -> body JSON
KEYS[5] workers  ZSET  worker id -> lease deadline (ms): how many may be waiting
ARGV[1] delay in ms (0 = ready now)
ARGV[2..] triples: job id, body, initial record JSON (an object with at least one field)
Returns the number of jobs stored. An id that already exists is skipped, so a producer may
resend a batch whose reply it lost without enqueuing anything twice. ]]
-- @include common
local now = now_ms()
local delay = tonumber(ARGV[1])
local ready = {}
local stored = 0
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[3], id) == 0 then
    stored = stored + 1
    redis.call('HSET', KEYS[4], id, ARGV[i + 1])
    -- The record is the producer's JSON with the fields below put in front: splicing text
    -- instead of decoding and encoding it halves the cost of a push on the server.
    local head = '{"attempts":0,"created_at":' .. now .. ',"updated_at":' .. now
    if delay > 0 then
      local due = due_after(delay)
      head = head .. ',"status":"delayed","due_at":' .. due
      schedule(KEYS[2], KEYS[1], KEYS[5], id, due)
    else
      head = head .. ',"status":"queued"'
      ready[#ready + 1] = id
    end
    local record = head .. ',' .. string.sub(ARGV[i + 2], 2)
    redis.call('HSET', KEYS[3], id, record)
  end
end
for i = 1, #ready, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ready, i, math.min(i + 999, #ready)))
end
return stored
