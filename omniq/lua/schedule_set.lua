-- schedule_set: create or replace schedule `name` of the queue (docs/schedules.md).
-- ARGV: now_ms, name, expected_rev (0: the schedule must not exist), then the 17 SCHED_DEF
--   fields (cron, every_ms, tz, start_ms, end_ms, misfire, misfire_grace_ms, jitter_ms,
--   payload, max_attempts, timeout_ms, backoff_ms, gid, group_limit, keep_completed_ms,
--   keep_failed_ms, extras), next_ms ('' = the pattern has no occurrence left), anchor_ms.
-- The client computes next_ms and anchor_ms (a cron expression needs a cron parser) from
-- the definition and the server clock it read with schedule_read; expected_rev makes the
-- write conditional on what it read (a concurrent change answers CHANGED, nothing written).
-- A definition equal to the stored one changes nothing ('unchanged': next fire, counters
-- and rev stay). A replaced schedule keeps its state (paused, counters, last occurrence).
-- Reply: {'OK', 'created' | 'replaced' | 'unchanged', rev}
--        | {'ERR', 'CHANGED', stored rev} | {'ERR', 'BAD_ARGS', detail} | {'ERR', 'PARTITIONED'}
local DEF_N = #SCHED_DEF
if #ARGV ~= 5 + DEF_N then return err('BAD_ARGS', 'argument count') end
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local name = ARGV[2]
if not valid_id(name) then return err('BAD_ARGS', 'name') end
local expected = int(ARGV[3])
if expected == nil or expected < 0 then return err('BAD_ARGS', 'expected_rev') end
local v = {}
for i = 1, DEF_N do v[i] = ARGV[3 + i] end
local cron, every, tz = v[1], v[2], v[3]
if (cron == '') == (every == '') then return err('BAD_ARGS', 'cron or every_ms') end
if cron ~= '' and (#cron > MAX_ID_LENGTH or string.find(cron, '%c')) then return err('BAD_ARGS', 'cron') end
if every ~= '' then
  local e = int(every)
  if e == nil or e < MIN_EVERY_MS then return err('BAD_ARGS', 'every_ms') end
end
if tz == '' or #tz > 64 or string.find(tz, '[%c%s]') or (every ~= '' and tz ~= 'UTC') then
  return err('BAD_ARGS', 'tz')
end
local start_ms, end_ms = nil, nil
if v[4] ~= '' then
  start_ms = int(v[4])
  if start_ms == nil or start_ms < 0 then return err('BAD_ARGS', 'start_ms') end
end
if v[5] ~= '' then
  end_ms = int(v[5])
  if end_ms == nil or end_ms < 0 or (start_ms and end_ms < start_ms) then
    return err('BAD_ARGS', 'end_ms')
  end
end
if not SCHED_MISFIRE[v[6]] then return err('BAD_ARGS', 'misfire') end
local grace, jitter = int(v[7]), int(v[8])
if grace == nil or grace < 0 then return err('BAD_ARGS', 'misfire_grace_ms') end
if jitter == nil or jitter < 0 then return err('BAD_ARGS', 'jitter_ms') end
-- the job template: what enqueue would accept (the occurrence's id is made at fire time)
local job, code, detail = parse_job(sched_job_fields('x', v, 8, 0), 0, now, 0)
if not job then
  if code == 'BAD_ARGS' then return err(code, detail) end
  return err('BAD_ARGS', code == 'BAD_GID' and 'gid' or 'payload')
end
-- an absolute expiry would expire every later occurrence: schedules take expire_in_ms
if job[8] and job[8].expires_ms and not job[8].expire_in_ms then
  return err('BAD_ARGS', 'expires_ms')
end
-- an occurrence is a new job with no place in a flow
if job[8] and (job[8].depends_on or job[8].dependents) then
  return err('BAD_ARGS', job[8].depends_on and 'depends_on' or 'dependents')
end
local next_ms = nil
if ARGV[4 + DEF_N] ~= '' then
  next_ms = int(ARGV[4 + DEF_N])
  if next_ms == nil or next_ms < 0 or (end_ms and next_ms > end_ms) then
    return err('BAD_ARGS', 'next_ms')
  end
end
local anchor = int(ARGV[5 + DEF_N])
if anchor == nil or anchor < 0 then return err('BAD_ARGS', 'anchor_ms') end
-- a logical queue that was partitioned keeps its schedules in its partitions
if redis.call('EXISTS', B .. ':partitions') == 1 then return err('PARTITIONED') end

local sk = SCHED_PREFIX .. name
local h = redis.call('HMGET', sk, 'rev', 'paused', unpack(SCHED_DEF))
local rev = tonumber(h[1] or '0') or 0
if rev ~= expected then return err('CHANGED', fmt(rev)) end
if h[1] then
  local same = true
  for i = 1, DEF_N do
    if h[2 + i] ~= v[i] then
      same = false
      break
    end
  end
  if same then return {'OK', 'unchanged', fmt(rev)} end
end
local sn = fmt(now)
local args = {sk, 'name', name, 'rev', fmt(rev + 1), 'next_ms', next_ms and fmt(next_ms) or '',
  'anchor_ms', fmt(anchor), 'updated_ms', sn}
for i = 1, DEF_N do
  args[#args + 1] = SCHED_DEF[i]
  args[#args + 1] = v[i]
end
if not h[1] then
  for _, f in ipairs({'created_ms', sn, 'paused', '0', 'fires', '0'}) do args[#args + 1] = f end
end
redis.call('HSET', unpack(args))
if h[2] == '1' or not next_ms then
  redis.call('ZADD', K_SCHEDULES, '+inf', name)
else
  redis.call('ZADD', K_SCHEDULES, next_ms, name)
end
return {'OK', h[1] and 'replaced' or 'created', fmt(rev + 1)}
