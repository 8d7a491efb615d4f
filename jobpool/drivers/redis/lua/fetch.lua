--[[ fetch: promote due jobs, then claim up to COUNT ready jobs for one worker (reliable fetch).
KEYS[1] ready    LIST  job ids ready to run (and wake tokens)
KEYS[2] delayed  ZSET  job id -> due time (ms)
KEYS[3] state    HASH  job id -> record JSON
KEYS[4] payload  HASH  job id -> body JSON
KEYS[5] workers  ZSET  worker id -> lease deadline (ms)
KEYS[6] wip      LIST  job ids this worker holds
ARGV[1] worker id
ARGV[2] count: most jobs to claim (the worker's prefetch)
ARGV[3] lease in ms
ARGV[4] most due jobs to promote in this call
ARGV[5] '1' when the worker runs jobs while it fetches (concurrency above 1), else absent
ARGV[6..] with ARGV[5]: the ids the worker holds (running or about to run)
Returns {ms until the next delayed job or -1, a worker id whose lease expired or '',
         then per claimed job: id, body, record JSON}.
A one-job worker only fetches with empty hands, so anything still in its wip list is either what
its blocking wait took for it (BLMOVE ready -> wip) or a claim whose reply was lost (a dropped
connection): it goes back to the front of the queue, attempt not counted, and is claimed again
right below, first in line. A wake token taken that way has no record and is dropped. A worker
running many jobs at once names the ids it holds (ARGV[6..]); only the others go back.
The first job of a batch begins with the claim: its attempt counts, or, for a failed job, its
failed() hook is marked started (record field `hook`, see common.lua). ]]
-- @include common
local now = now_ms()
local wid = ARGV[1]

local stranded = redis.call('LRANGE', KEYS[6], 0, -1)
if ARGV[5] == '1' then
  local held = {}
  for i = 6, #ARGV do held[ARGV[i]] = true end
  local loose = {}
  for _, id in ipairs(stranded) do
    if not held[id] then
      redis.call('LREM', KEYS[6], 1, id)
      loose[#loose + 1] = id
    end
  end
  stranded = loose
elseif #stranded > 0 then
  redis.call('DEL', KEYS[6])  -- freeing first: a full server drains
end
for i = #stranded, 1, -1 do hand_back(KEYS[1], KEYS[3], stranded[i], now) end

local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
if #due > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, #due - 1)
  for _, id in ipairs(due) do
    local st = load_state(KEYS[3], id)
    if st and st['status'] == 'delayed' then
      st['status'] = 'queued'
      save_state(KEYS[3], id, st, now)
    end
  end
  redis.call('RPUSH', KEYS[1], unpack(due))
end

set_lease(KEYS[5], wid, now + tonumber(ARGV[3]))

-- Claim at most a fair share of what waits, so a short queue is spread over idle workers
-- instead of being held by one; only the first job begins now, the others when the worker
-- reaches them (the begin script), so a death costs an attempt only to the job it ran.
local out = {-1, ''}
local peers = math.max(redis.call('ZCARD', KEYS[5]), 1)
local want = math.min(tonumber(ARGV[2]),
                      math.max(math.floor(redis.call('LLEN', KEYS[1]) / peers), 1))
local beginning = true
while want > 0 do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  local body = redis.call('HGET', KEYS[4], id)
  local raw = body and redis.call('HGET', KEYS[3], id)
  if body and not raw then redis.call('HDEL', KEYS[4], id) end  -- no record: not a job of ours
  local st = raw and cjson.decode(raw)
  -- a failed job is here only to have its failed() hook run; anything else failed is stale,
  -- and a cancelled job never runs
  if st and (st['status'] ~= 'failed' or st['hook']) and st['status'] ~= 'cancelled' then
    if beginning then
      mark_begun(st, wid, now)
      raw = save_state(KEYS[3], id, st, now)
    end
    beginning = false
    redis.call('RPUSH', KEYS[6], id)
    out[#out + 1] = id
    out[#out + 1] = body
    out[#out + 1] = raw
    want = want - 1
  end
end

local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[1] then out[1] = math.max(tonumber(first[2]) - now, 0) end
local stale = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - 1, 'LIMIT', 0, 1)
if stale[1] then out[2] = stale[1] end
return out
