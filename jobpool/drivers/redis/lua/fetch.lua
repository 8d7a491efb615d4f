--[[ fetch: promote due jobs, then claim up to COUNT ready jobs for one worker (reliable fetch).
KEYS[1] ready    LIST  job ids ready to run (and wake tokens)
KEYS[2] delayed  ZSET  job id -> due time (ms)
KEYS[3] state    HASH  job id -> record JSON
KEYS[4] payload  HASH  job id -> body JSON
KEYS[5] workers  ZSET  worker id -> lease deadline (ms)
KEYS[6] wip      LIST  job ids this worker holds
KEYS[7] paused   STRING set while the queue is paused (`jobpool pause`)
KEYS[8] starts   ZSET  job id@ms -> when it was claimed (ms), for the last rate-limit window
KEYS[9] limits   HASH  "starts:CLASS" -> JSON [ms...] of a job class's starts in its window,
                       "running:CLASS" -> JSON [id...] of its jobs begun and maybe running
ARGV[1] worker id
ARGV[2] count: most jobs to claim (the worker's prefetch)
ARGV[3] lease in ms
ARGV[4] most due jobs to promote in this call
ARGV[5] the queue's rate limit: jobs per window, 0 for none
ARGV[6] the rate limit's window in ms
ARGV[7] the queue's max_running: most jobs its workers may hold at once, 0 for none
ARGV[8] '1' when the worker runs jobs while it fetches (concurrency above 1), else '0'
ARGV[9..] with ARGV[8]: the ids the worker holds (running or about to run)
Returns {ms until the next delayed job or -1, a worker id whose lease expired or '',
         then per claimed job: id, body, record JSON}; for a paused queue {-1, '', 'paused'}
         (due jobs are still promoted, and the lease renewed); when a limit allows no claim
         now {ms until it may, stale worker or '', 'limited'}.
Limits (see jobpool/limits.py): the rate counts starts in a sliding window (KEYS[8]): under a
rate limit a claim takes one job, which it begins, so that its `started_at` is the time counted;
the
max_running count is what every worker of the queue holds, the lengths of their wip lists
(keys named after KEYS[6], in the same slot). A job class's own limits (`rate_limit`,
`max_running` on the class or @job: the record's `limit`, [class, count, window ms, max
running]) are checked as the claim reaches such a job, which is then claimed alone and begun;
over its limit, it goes back as delayed to when the limit allows (or 0.1 s, for max_running),
no attempt counted, and the claim goes on with the next jobs (at most LIMITED_SCAN of them).
A one-job worker only fetches with empty hands, so anything still in its wip list is either what
its blocking wait took for it (BLMOVE ready -> wip) or a claim whose reply was lost (a dropped
connection): it goes back to the front of the queue, attempt not counted, and is claimed again
right below, first in line. A wake token taken that way has no record and is dropped. A worker
running many jobs at once names the ids it holds (ARGV[6..]); only the others go back.
The first job of a batch begins with the claim: its attempt counts, or, for a failed job, its
failed() hook is marked started (record field `hook`, see common.lua). ]]
-- @include common
local MAX_RUNNING_RECHECK_MS = 100  -- a worker at max_running looks again this soon
local now = now_ms()
local LIMITED_SCAN = 100  -- most jobs over their class's limit one claim sets aside

-- A limited class's starts (ms) still inside its rate window, oldest first.
local function recent_starts(field, window)
  local raw = redis.call('HGET', KEYS[9], field)
  local kept = {}
  for _, t in ipairs(raw and cjson.decode(raw) or {}) do
    if t > now - window then kept[#kept + 1] = t end
  end
  return kept
end

-- The ids of a limited class's jobs still processing, after `first` if given.
local function still_running(field, first)
  local raw = redis.call('HGET', KEYS[9], field)
  local kept = {first}
  for _, other in ipairs(raw and cjson.decode(raw) or {}) do
    local ost = load_state(KEYS[3], other)
    if ost and ost['status'] == 'processing' then kept[#kept + 1] = other end
  end
  return kept
end

-- ms until a job class's limits let one more of its jobs start, or nil if one may now.
local function class_wait(limit)
  local count, window, most = tonumber(limit[2]), tonumber(limit[3]), tonumber(limit[4])
  local starts, runs = 'starts:' .. limit[1], 'running:' .. limit[1]  -- fields of KEYS[9]
  local wait = nil
  if count > 0 then
    local kept = recent_starts(starts, window)
    if #kept >= count then wait = math.max(kept[1] + window - now, 1) end
  end
  if most > 0 and #still_running(runs) >= most then
    wait = math.max(wait or 0, MAX_RUNNING_RECHECK_MS)
  end
  return wait
end

-- Count a start of a job of a limited class (the claim begins it).
local function class_started(limit, id)
  local count, window, most = tonumber(limit[2]), tonumber(limit[3]), tonumber(limit[4])
  local starts, runs = 'starts:' .. limit[1], 'running:' .. limit[1]  -- fields of KEYS[9]
  if count > 0 then
    local kept = recent_starts(starts, window)
    kept[#kept + 1] = now
    redis.call('HSET', KEYS[9], starts, cjson.encode(kept))
  end
  if most > 0 then
    redis.call('HSET', KEYS[9], runs, cjson.encode(still_running(runs, id)))
  end
end
local wid = ARGV[1]

local stranded = redis.call('LRANGE', KEYS[6], 0, -1)
if ARGV[8] == '1' then
  local held = {}
  for i = 9, #ARGV do held[ARGV[i]] = true end
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
if redis.call('EXISTS', KEYS[7]) == 1 then return {-1, '', 'paused'} end

local function stale_worker()
  local stale = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - 1, 'LIMIT', 0, 1)
  return stale[1] or ''
end

-- Limits: how many may be claimed now (`room`), or how long until one may.
local room = tonumber(ARGV[2])
local wait_ms = nil
local max_running = tonumber(ARGV[7])
if max_running > 0 then
  local base = string.sub(KEYS[6], 1, #KEYS[6] - #wid)  -- PREFIX:{QUEUE}:wip:
  local held = 0
  for _, w in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
    local wip = base .. w  -- a peer's list: the same hash tag, so the same slot as KEYS[6]
    held = held + redis.call('LLEN', wip)
  end
  room = math.min(room, max_running - held)
  if room <= 0 then wait_ms = MAX_RUNNING_RECHECK_MS end
end
local rate = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - window)
  local left = rate - redis.call('ZCARD', KEYS[8])
  if left <= 0 then
    local oldest = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
    wait_ms = math.max(tonumber(oldest[2]) + window - now, 1, wait_ms or 0)
  end
  -- One job per claim, begun by the claim: its start is the time counted in the window.
  room = math.min(room, left, 1)
end
if room <= 0 then return {wait_ms, stale_worker(), 'limited'} end

-- Claim at most a fair share of what waits, so a short queue is spread over idle workers
-- instead of being held by one; only the first job begins now, the others when the worker
-- reaches them (the begin script), so a death costs an attempt only to the job it ran.
local out = {-1, ''}
local peers = math.max(redis.call('ZCARD', KEYS[5]), 1)
local want = math.min(room,
                      math.max(math.floor(redis.call('LLEN', KEYS[1]) / peers), 1))
local beginning = true
local set_aside = 0
while want > 0 do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  local body = redis.call('HGET', KEYS[4], id)
  local raw = body and redis.call('HGET', KEYS[3], id)
  if body and not raw then redis.call('HDEL', KEYS[4], id) end  -- no record: not a job of ours
  local st = raw and cjson.decode(raw)
  local limit = st and st['status'] ~= 'failed' and st['limit']
  if limit and not beginning then
    redis.call('LPUSH', KEYS[1], id)  -- a limited job is claimed alone: the next claim's
    break
  end
  if limit then
    local wait = set_aside < LIMITED_SCAN and class_wait(limit)
    if wait then  -- over its class's limit: back to wait until it allows, uncounted
      st['status'] = 'delayed'
      st['due_at'] = now + wait
      save_state(KEYS[3], id, st, now)
      schedule(KEYS[2], KEYS[1], KEYS[5], id, now + wait)
      set_aside = set_aside + 1
      st = nil
    elseif set_aside >= LIMITED_SCAN then
      redis.call('LPUSH', KEYS[1], id)
      break
    else
      class_started(limit, id)
      want = 1  -- claimed alone
    end
  end
  -- a failed job is here only to have its failed() hook run; anything else failed is stale,
  -- and a cancelled job never runs
  if st and (st['status'] ~= 'failed' or st['hook']) and st['status'] ~= 'cancelled' then
    if beginning then
      mark_begun(st, wid, now)
      raw = save_state(KEYS[3], id, st, now)
    end
    beginning = false
    redis.call('RPUSH', KEYS[6], id)
    if rate > 0 then
      local start = id .. '@' .. now
      redis.call('ZADD', KEYS[8], now, start)
    end
    out[#out + 1] = id
    out[#out + 1] = body
    out[#out + 1] = raw
    want = want - 1
  end
end

local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[1] then out[1] = math.max(tonumber(first[2]) - now, 0) end
out[2] = stale_worker()
return out
