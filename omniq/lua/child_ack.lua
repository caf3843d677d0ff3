-- child_ack: count one child as done, once per child id. KEYS[1] = "{cc:<key>}:meta".
-- ARGV: child_id, [finished_ttl_ms] (how long "finished" is remembered; default 1 day)
-- Reply: {'OK', remaining} | {'ERR', code}
-- After the counter reaches 0 a "finished" marker is kept, so a late or repeated ack
-- answers 0 instead of NO_COUNTER (fixes D12).
-- Not a queue script: only the helper functions it uses are linked from lib.lua.
local C = KEYS[1]
if string.sub(C, -5) == ':meta' then C = string.sub(C, 1, -6) end
local K_COUNT, K_DONE, K_FINISHED = C .. ':count', C .. ':done', C .. ':finished'
local child = ARGV[1]
if child == nil or child == '' then return {'ERR', 'CHILD_REQUIRED'} end
local fttl = int(ARGV[2] or '86400000')
if fttl == nil or fttl < 1 then return {'ERR', 'BAD_ARGS', 'finished_ttl_ms'} end
local count = redis.call('GET', K_COUNT)
if not count then
  if redis.call('EXISTS', K_FINISHED) == 1 then return {'OK', '0'} end
  return {'ERR', 'NO_COUNTER'}
end
if redis.call('SADD', K_DONE, child) == 0 then
  return {'OK', count}
end
-- the set of counted children expires exactly with the counter: the same absolute time
-- (PEXPIRETIME, Redis 7+; a relative PTTL read could give it one millisecond more)
local at = redis.pcall('PEXPIRETIME', K_COUNT)
if type(at) == 'number' then
  if at > 0 then redis.call('PEXPIREAT', K_DONE, at) end
else
  local pttl = redis.call('PTTL', K_COUNT)
  if pttl > 0 then redis.call('PEXPIRE', K_DONE, pttl) end
end
local left = redis.call('DECR', K_COUNT)
if left <= 0 then
  redis.call('DEL', K_COUNT, K_DONE)
  redis.call('SET', K_FINISHED, '1', 'PX', fttl)
  return {'OK', '0'}
end
return {'OK', fmt(left)}
