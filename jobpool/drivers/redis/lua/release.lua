--[[ release: a worker that stops hands back jobs it claimed but did not run; no attempt counted.
KEYS[1] wip      LIST  job ids this worker holds
KEYS[2] ready    LIST  job ids ready to run (and wake tokens)
KEYS[3] state    HASH  job id -> record JSON
KEYS[4] workers  ZSET  worker id -> lease deadline (ms)
ARGV[1] worker id
ARGV[2..] job ids
Returns the number handed back. Releasing every held job also drops the worker's lease entry. ]]
-- @include common
local now = now_ms()
local n = 0
for i = #ARGV, 2, -1 do
  if redis.call('LREM', KEYS[1], -1, ARGV[i]) == 1 then
    hand_back(KEYS[2], KEYS[3], ARGV[i], now)
    n = n + 1
  end
end
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[4], ARGV[1]) end
return n
