--[[ release: a worker that stops hands back jobs it claimed but did not run; no attempt counted.
KEYS[1] wip      LIST  job ids this worker holds
KEYS[2] ready    LIST  job ids ready to run (and wake tokens)
KEYS[3] state    HASH  job id -> record JSON
KEYS[4] workers  ZSET  worker id -> lease deadline (ms)
KEYS[5] expire   ZSET  job id -> time its finished record is deleted (ms)
ARGV[1] worker id
ARGV[2] cancelled records' time to live in ms
ARGV[3..] job ids
Returns the number handed back. A running job that cancel.lua asked to stop (a second SIGTERM
cut it short) ends cancelled instead, as requeue.lua ends it: it must not run again. Releasing
every held job also drops the worker's lease entry. ]]
-- @include common
local now = now_ms()
local n = 0
for i = #ARGV, 3, -1 do
  local id = ARGV[i]
  if redis.call('LREM', KEYS[1], -1, id) == 1 then
    local st = load_state(KEYS[3], id)
    if st and stop_requested(st) then
      mark_cancelled(KEYS[3], KEYS[5], id, st, now, tonumber(ARGV[2]), KEYS[2])
    else
      hand_back(KEYS[2], KEYS[3], id, now)
      n = n + 1
    end
  end
end
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[4], ARGV[1]) end
return n
