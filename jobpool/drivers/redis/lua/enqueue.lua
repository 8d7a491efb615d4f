--[[ enqueue: store new jobs and make them ready now, or due later; a unique job only while no
other job holds its key.
KEYS[1] ready    LIST    job ids ready to run (and wake tokens)
KEYS[2] delayed  ZSET    job id -> due time (ms)
KEYS[3] state    HASH    job id -> record JSON
KEYS[4] payload  HASH    job id -> body JSON
KEYS[5] workers  ZSET    worker id -> lease deadline (ms): how many may be waiting
KEYS[6] unique   STRING  optional, with a single job: the id of the job holding its unique key
ARGV[1] delay in ms (0 = ready now)
ARGV[2] with KEYS[6]: the longest the job may hold its unique key, in ms (else 0)
ARGV[3..] triples: job id, body, initial record JSON (an object with at least one field)
Returns the number of jobs stored. An id that already exists is skipped, so a producer may
resend a batch whose reply it lost without enqueuing anything twice.
With KEYS[6]: if the job that holds the key is queued, delayed, retrying or processing, nothing
is stored and that job's id is returned (a string: the duplicate's answer). Otherwise the key
passes to the new job for ARGV[2] ms, its record names the key (`unique_lock`) so that the job
releases it when it completes, fails or is cancelled (release_unique in common.lua), and 1 is
returned. A holder that finished without releasing, or whose record is gone, holds nothing. ]]
-- @include common
local now = now_ms()
local delay = tonumber(ARGV[1])
local lock = KEYS[6]
if lock then
  local holder = redis.call('GET', lock)
  local st = holder and load_state(KEYS[3], holder)
  if st and WAITING_OR_RUNNING[st['status']] then return holder end
end
local ready = {}
local stored = 0
for i = 3, #ARGV, 3 do
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
    if lock then
      head = head .. ',"unique_lock":' .. cjson.encode(lock)
      redis.call('SET', lock, id, 'PX', tonumber(ARGV[2]))
    end
    local record = head .. ',' .. string.sub(ARGV[i + 2], 2)
    redis.call('HSET', KEYS[3], id, record)
  end
end
for i = 1, #ready, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ready, i, math.min(i + 999, #ready)))
end
return stored
