--[[ watch: a producer waits for a job to finish (qm.result()): read its record and, unless it
has finished, ask the script that finishes it to publish its id on the job's channel.
KEYS[1] state    HASH  job id -> record JSON
ARGV[1] job id
ARGV[2] the job's channel (QueueKeys.done), which the producer subscribed to before this call
Returns the record as stored, or false if there is none.
The channel goes into the record's `notify` field, which ack.lua and mark_failed (common.lua)
publish on; subscribing first, then reading here, leaves no moment in which the job could
finish unseen. The record's `updated_at` is left alone: no state changed. ]]
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local st = cjson.decode(raw)
local status = st['status']
if status == 'completed' or status == 'failed' or status == 'cancelled' then return raw end
if st['notify'] == ARGV[2] then return raw end  -- another waiter asked already
st['notify'] = ARGV[2]
raw = cjson.encode(st)
redis.call('HDEL', KEYS[1], ARGV[1])  -- freeing first: a full server still takes the script
redis.call('HSET', KEYS[1], ARGV[1], raw)
return raw
