--[[ retry_failed: put failed jobs back in the queue with a fresh set of attempts.
KEYS[1] failed   ZSET  job id -> time it failed (ms)
KEYS[2] expire   ZSET  job id -> time its finished record is deleted (ms)
KEYS[3] state    HASH  job id -> record JSON
KEYS[4] payload  HASH  job id -> body JSON
KEYS[5] ready    LIST  job ids ready to run (and wake tokens)
ARGV[1] most jobs to move when ARGV[2] is '*'
ARGV[2..] job ids, or '*' for the oldest ARGV[1] failed jobs
Returns the number of jobs queued again. ]]
-- @include common
local now = now_ms()
local ids = {}
if ARGV[2] == '*' then
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
else
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local n = 0
for _, id in ipairs(ids) do
  local st = load_state(KEYS[3], id)
  local usable = st and st['status'] == 'failed' and not st['hook']
  if usable and redis.call('HEXISTS', KEYS[4], id) == 1 then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    st['status'] = 'queued'
    st['attempts'] = 0
    st['finished_at'] = nil
    st['expires_at'] = nil
    st['last_error'] = st['error']
    st['error'] = nil
    st['traceback'] = nil
    save_state(KEYS[3], id, st, now)
    redis.call('RPUSH', KEYS[5], id)
    n = n + 1
  end
end
return n
