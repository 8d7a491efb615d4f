-- Shared helpers, inlined by scripts.py wherever a script says "@include common".
-- Times are integer milliseconds from the Redis server clock, so every host agrees on "now".
-- Job records are JSON objects in the queue's state hash; see README "Key layout".
local WAKE = '~wake'  -- a token in the ready list that wakes idle workers; never a job id

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The next whole ms: due times count from here, so that flooring to ms never makes a job due
-- before `delay` has fully passed.
local function due_after(delay_ms)
  if delay_ms <= 0 then return now_ms() end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000) + delay_ms
end

local function load_state(state_key, id)
  local raw = redis.call('HGET', state_key, id)
  if not raw then return nil end
  return cjson.decode(raw)
end

-- Returns the JSON it stored.
local function save_state(state_key, id, st, now)
  st['updated_at'] = now
  local raw = cjson.encode(st)
  redis.call('HSET', state_key, id, raw)
  return raw
end

-- Schedule id at `due`; wake the idle workers when it becomes the earliest due job, since they
-- are blocked with a timeout computed from the previous earliest. A non-empty ready list means no
-- worker is blocked, so no token is needed then. Each blocked worker takes one token (the wait
-- moves it into the worker's own list), so there is one per live worker; tokens nobody took are
-- dropped by the next fetch.
local function schedule(delayed_key, ready_key, workers_key, id, due)
  local first = redis.call('ZRANGE', delayed_key, 0, 0, 'WITHSCORES')
  redis.call('ZADD', delayed_key, due, id)
  if (first[1] == nil or due < tonumber(first[2])) and redis.call('LLEN', ready_key) == 0 then
    for _ = 1, math.min(math.max(redis.call('ZCARD', workers_key), 1), 1000) do
      redis.call('RPUSH', ready_key, WAKE)
    end
  end
end

-- Drop completed and failed records whose time to live has passed, a few per call, so that
-- cleaning up costs nothing extra in a round trip and never blocks the server for long.
local function prune(expire_key, failed_key, state_key, payload_key, now, limit)
  local old = redis.call('ZRANGEBYSCORE', expire_key, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(old) do
    redis.call('HDEL', state_key, id)
    redis.call('HDEL', payload_key, id)
    redis.call('ZREM', failed_key, id)
  end
  if #old > 0 then redis.call('ZREM', expire_key, unpack(old)) end
end

-- Hand a claimed job back to the front of the ready list without counting the attempt: it was
-- claimed but never run to an outcome (shutdown, or a claim whose reply never arrived).
local function hand_back(ready_key, state_key, id, now)
  local st = load_state(state_key, id)
  if not st then return end
  if st['status'] == 'processing' then
    st['attempts'] = math.max((st['attempts'] or 1) - 1, 0)
    st['status'] = 'queued'
    st['worker'] = nil
    save_state(state_key, id, st, now)
  end
  redis.call('LPUSH', ready_key, id)
end

-- Begin a job this worker claimed in a batch: its attempt counts from here. Returns 1 if it is
-- now processing, 0 if the worker does not hold it waiting to start.
local function start_job(wip_key, state_key, id, wid, now)
  if not redis.call('LPOS', wip_key, id) then return 0 end
  local st = load_state(state_key, id)
  if not st or st['status'] == 'processing' or st['status'] == 'failed' then return 0 end
  st['status'] = 'processing'
  st['attempts'] = (st['attempts'] or 0) + 1
  st['worker'] = wid
  st['started_at'] = now
  save_state(state_key, id, st, now)
  return 1
end

-- Count finished jobs in 10-second buckets of the queue's stats hash ("done:BUCKET",
-- "failed:BUCKET"), for "jobs done in the last minute". The first count of a new bucket drops
-- the buckets older than two minutes, so the hash stays a few fields long.
local function count_finished(stats_key, kind, n, now)
  local bucket = math.floor(now / 10000)
  local field = kind .. ':' .. bucket
  if redis.call('HINCRBY', stats_key, field, n) == n then
    for _, old in ipairs(redis.call('HKEYS', stats_key)) do
      local b = tonumber(string.match(old, ':(%d+)$'))
      if b and b < bucket - 12 then redis.call('HDEL', stats_key, old) end
    end
  end
end
