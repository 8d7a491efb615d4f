--[[ delete: remove one job wherever it waits, with its record.
KEYS[1] ready    LIST  job ids ready to run (and wake tokens)
KEYS[2] delayed  ZSET  job id -> due time (ms)
KEYS[3] failed   ZSET  job id -> time it failed (ms)
KEYS[4] expire   ZSET  job id -> time its finished record is deleted (ms)
KEYS[5] state    HASH  job id -> record JSON
KEYS[6] payload  HASH  job id -> body JSON
ARGV[1] job id
Returns 1 if deleted, 0 if unknown, -1 if a worker is running it (it is left alone). ]]
local id = ARGV[1]
local raw = redis.call('HGET', KEYS[5], id)
if not raw then return 0 end
if cjson.decode(raw)['status'] == 'processing' then return -1 end
redis.call('LREM', KEYS[1], 0, id)
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
return 1
