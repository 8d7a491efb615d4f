--[[ schedule_tick: claim one tick of a schedule and push its job in the same step, so that a
tick pushes one job however many masters race for it (jobpool/schedules/runner.py).
KEYS[1] schedule HASH    claimed: the latest tick claimed (ms); run_tick, run_job, run_at: the
                         last tick that pushed a job, that job's id, when (ms); outcome: of the
                         latest claim (pushed, skipped, held); held_by: the job that held it
KEYS[2] ready    LIST    job ids ready to run
KEYS[3] state    HASH    job id -> record JSON
KEYS[4] payload  HASH    job id -> body JSON
KEYS[5] unique   STRING  optional, for a unique job: the id of the job holding its key
ARGV[1] the tick: its time in ms, which names it
ARGV[2] catch_up: 1 to push a missed tick (claimed more than the grace after its time), 0 to
        skip it
ARGV[3] the grace in ms
ARGV[4] the new job's id
ARGV[5] its body
ARGV[6] its initial record JSON (an object with at least one field)
ARGV[7] with KEYS[5]: the longest the job may hold its unique key, in ms (else 0)
Returns {outcome, job id, claimed tick}. Outcome 1: pushed (the new job's id). 0: this tick or a
later one was claimed already (the last job pushed, or ''); a master whose reply was lost sends
the same tick again and gets this. 2: skipped: missed with catch_up 0, or missed before the
schedule's first claim (a new schedule starts at its next tick). 3: the job holding the unique key
waits or runs, so nothing is pushed (its id). The tick is claimed in cases 1, 2 and 3. ]]
-- @include common
local tick = tonumber(ARGV[1])
local claimed = tonumber(redis.call('HGET', KEYS[1], 'claimed'))
if claimed and claimed >= tick then
  return {0, redis.call('HGET', KEYS[1], 'run_job') or '', claimed}
end
local now = now_ms()
if now - tick > tonumber(ARGV[3]) and (not claimed or ARGV[2] == '0') then
  redis.call('HSET', KEYS[1], 'claimed', tick, 'outcome', 'skipped')
  return {2, '', tick}
end
local lock = KEYS[5]
if lock then
  local holder = redis.call('GET', lock)
  local st = holder and load_state(KEYS[3], holder)
  if st and WAITING_OR_RUNNING[st['status']] then
    redis.call('HSET', KEYS[1], 'claimed', tick, 'outcome', 'held', 'held_by', holder)
    return {3, holder, tick}
  end
end
local id = ARGV[4]
redis.call('HSET', KEYS[1], 'claimed', tick, 'outcome', 'pushed', 'run_tick', tick,
  'run_job', id, 'run_at', now)
redis.call('HSET', KEYS[4], id, ARGV[5])
-- As enqueue.lua does: the producer's record with these fields spliced in front.
local head = '{"attempts":0,"created_at":' .. now .. ',"updated_at":' .. now ..
  ',"status":"queued","tick_at":' .. tick
if lock then
  head = head .. ',"unique_lock":' .. cjson.encode(lock)
  redis.call('SET', lock, id, 'PX', tonumber(ARGV[7]))
end
local record = head .. ',' .. string.sub(ARGV[6], 2)
redis.call('HSET', KEYS[3], id, record)
redis.call('RPUSH', KEYS[2], id)
return {1, id, tick}
