--[[ requeue: hand back the jobs of a worker that died, counting the attempt each was running.
KEYS[1] workers  ZSET  worker id -> lease deadline (ms)
KEYS[2] wip      LIST  job ids the dead worker held
KEYS[3] ready    LIST  job ids ready to run (and wake tokens)
KEYS[4] state    HASH  job id -> record JSON
KEYS[5] failed   ZSET  job id -> time it failed (ms)
KEYS[6] expire   ZSET  job id -> time its finished record is deleted (ms)
ARGV[1] worker id
ARGV[2] reason, recorded as the attempt's error ("worker killed by signal 9")
ARGV[3] failed records' time to live in ms
ARGV[4] 1 to act only if the lease has expired (a peer reaping), 0 when the supervisor saw it die
ARGV[5] 1 to count the running attempt (a death), 0 not to (a shutdown killed it past its grace)
Returns the number of jobs handed back, or -1 if the lease is still live.
A job out of attempts ends failed here but is also queued once more, flagged, so that a worker runs
its failed() hook: user code never runs in the supervisor. A worker that dies inside that hook
leaves the job failed without the hook, so a poison job cannot loop. ]]
-- @include common
local now = now_ms()
if ARGV[4] == '1' then
  local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if deadline and tonumber(deadline) >= now then return -1 end
end
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
local handed = 0
for i = #ids, 1, -1 do
  local id = ids[i]
  local st = load_state(KEYS[4], id)
  if st and (ARGV[5] == '0' or (st['status'] ~= 'processing' and st['status'] ~= 'failed')) then
    hand_back(KEYS[3], KEYS[4], id, now)  -- a shutdown, or claimed in a batch but not started
    handed = handed + 1
  elseif st then
    st['worker'] = nil
    if st['status'] == 'failed' then
      st['hook'] = nil
      st['hook_error'] = ARGV[2]
      save_state(KEYS[4], id, st, now)
    else
      st['error'] = ARGV[2]
      st['traceback'] = nil
      if (st['attempts'] or 0) >= (st['max_tries'] or 1) then
        local expires = now + tonumber(ARGV[3])
        st['status'] = 'failed'
        st['hook'] = 1
        st['finished_at'] = now
        st['expires_at'] = expires
        redis.call('ZADD', KEYS[5], now, id)
        redis.call('ZADD', KEYS[6], expires, id)
      else
        st['status'] = 'queued'
      end
      save_state(KEYS[4], id, st, now)
      redis.call('LPUSH', KEYS[3], id)
      handed = handed + 1
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return handed
