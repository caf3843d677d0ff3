-- clear_rate_limit: remove the rate limit of the queue (gid '') or of one group, and its
-- window's log. A parked group is put back in line.
-- ARGV: now_ms, gid ('' = the queue-wide limit)
-- Reply: {'OK', '1' when there was such a limit else '0'} | {'ERR', 'BAD_ARGS', detail}
if #ARGV ~= 2 then return err('BAD_ARGS', 'argument count') end
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local gid = ARGV[2]
if gid ~= '' and not valid_id(gid) then return err('BAD_ARGS', 'gid') end
local removed
if gid == '' then
  removed = redis.call('HDEL', K_RATE, 'queue')
  redis.call('DEL', K_RATE_LOG)
else
  removed = redis.call('HDEL', K_RATE, 'g:' .. gid)
  if removed == 1 and redis.call('HINCRBY', K_RATE, 'groups', -1) <= 0 then
    redis.call('HDEL', K_RATE, 'groups')
  end
  redis.call('DEL', gkey(gid, ':rate_log'))
  unpark_group(gid, now)
end
if removed == 1 then redis.call('PUBLISH', WAKE_CHANNEL, 'limits') end
return {'OK', fmt(removed)}
