-- schedule_pause: pause or resume schedule `name` (docs/schedules.md). A paused schedule
-- fires nothing (schedule_fire answers PAUSED); a resumed one continues from the next
-- occurrence after now, which the client computed from the definition it read at rev
-- expected_rev (a concurrent change answers CHANGED, nothing written).
-- ARGV: now_ms, name, paused ('1' pause | '0' resume), expected_rev and next_ms (resume:
--   the next fire time, '' = no occurrence left, never after the schedule's end_ms;
--   pause: '' '')
-- Reply: {'OK', '1' when the state changed else '0'}
--        | {'ERR', 'NO_SCHEDULE'} | {'ERR', 'CHANGED', stored rev} | {'ERR', 'BAD_ARGS', detail}
if #ARGV ~= 5 then return err('BAD_ARGS', 'argument count') end
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local name, paused = ARGV[2], ARGV[3]
if not valid_id(name) then return err('BAD_ARGS', 'name') end
if paused ~= '1' and paused ~= '0' then return err('BAD_ARGS', 'paused') end
local expected, next_ms = nil, nil
if paused == '0' then
  expected = int(ARGV[4])
  if expected == nil or expected < 1 then return err('BAD_ARGS', 'expected_rev') end
  if ARGV[5] ~= '' then
    next_ms = int(ARGV[5])
    if next_ms == nil or next_ms < 0 then return err('BAD_ARGS', 'next_ms') end
  end
elseif ARGV[4] ~= '' or ARGV[5] ~= '' then
  return err('BAD_ARGS', 'expected_rev')
end
local sk = SCHED_PREFIX .. name
local h = redis.call('HMGET', sk, 'rev', 'paused', 'end_ms')
if not h[1] then return err('NO_SCHEDULE') end
if next_ms and h[3] and h[3] ~= '' and next_ms > tonumber(h[3]) then
  return err('BAD_ARGS', 'next_ms')
end
if h[2] == paused then return {'OK', '0'} end
if paused == '1' then
  redis.call('HSET', sk, 'paused', '1', 'updated_ms', fmt(now))
  redis.call('ZADD', K_SCHEDULES, '+inf', name)
  return {'OK', '1'}
end
if tonumber(h[1]) ~= expected then return err('CHANGED', h[1]) end
redis.call('HSET', sk, 'paused', '0', 'updated_ms', fmt(now), 'next_ms',
  next_ms and fmt(next_ms) or '')
redis.call('ZADD', K_SCHEDULES, next_ms or '+inf', name)
return {'OK', '1'}
