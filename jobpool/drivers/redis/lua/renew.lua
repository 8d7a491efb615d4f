--[[ renew: extend the leases of live workers (from the worker's heartbeat or its supervisor).
KEYS[1] workers  ZSET  worker id -> lease deadline (ms)
ARGV[1] lease in ms
ARGV[2..] worker ids
Returns the new deadline. ]]
-- @include common
local deadline = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do set_lease(KEYS[1], ARGV[i], deadline) end
return deadline
