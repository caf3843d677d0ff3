-- childs_init: start a parent/child completion counter. KEYS[1] = "{cc:<key>}:meta".
-- ARGV: expected, [ttl_ms] (0 = no expiry)
-- Reply: {'OK'} | {'ERR', code}
-- Not a queue script: only the helper functions it uses are linked from lib.lua.
local C = KEYS[1]
if string.sub(C, -5) == ':meta' then C = string.sub(C, 1, -6) end
local K_COUNT, K_DONE, K_FINISHED = C .. ':count', C .. ':done', C .. ':finished'
if ARGV[1] == nil or ARGV[1] == '' then return {'ERR', 'NO_EXPECTED'} end
local n = int(ARGV[1])
if n == nil or n <= 0 then return {'ERR', 'BAD_EXPECTED'} end
local ttl = int(ARGV[2] or '0')
if ttl == nil or ttl < 0 then return {'ERR', 'BAD_ARGS', 'ttl_ms'} end
if redis.call('EXISTS', K_COUNT) == 1 then return {'ERR', 'ALREADY_INIT'} end
redis.call('SET', K_COUNT, fmt(n))
redis.call('DEL', K_DONE, K_FINISHED)
if ttl > 0 then redis.call('PEXPIRE', K_COUNT, ttl) end
return {'OK'}
