--[[ start: a worker begins a job it claimed earlier in a batch; its attempt counts from here.
KEYS[1] wip      LIST  job ids this worker holds
KEYS[2] state    HASH  job id -> record JSON
ARGV[1] job id
ARGV[2] worker id
Returns 1 if the job is now processing, 0 if this worker does not hold it waiting to start.
Claiming marks only the first job of a batch as started, so that a worker that dies holding a
batch costs an attempt only to the job it was running. ]]
-- @include common
local id = ARGV[1]
if not redis.call('LPOS', KEYS[1], id) then return 0 end
local st = load_state(KEYS[2], id)
if not st or st['status'] == 'processing' or st['status'] == 'failed' then return 0 end
local now = now_ms()
st['status'] = 'processing'
st['attempts'] = (st['attempts'] or 0) + 1
st['worker'] = ARGV[2]
st['started_at'] = now
save_state(KEYS[2], id, st, now)
return 1
