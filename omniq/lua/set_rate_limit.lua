-- set_rate_limit: a rate limit of the queue (gid '') or of one group: at most max_jobs
-- reservations in any per_ms window (a sliding window, counted by the reserve scripts).
-- Replaces the limit there was; the window's log is kept, so a lower limit holds at once.
-- A parked group is put back in line (the next reservation looks at its new limit).
-- ARGV: now_ms, gid ('' = the whole queue), max_jobs (1..MAX_RATE_JOBS), per_ms (1..2^53-1)
-- Reply: {'OK', '1' when there was no such limit else '0'} | {'ERR', 'BAD_ARGS', detail}
if #ARGV ~= 4 then return err('BAD_ARGS', 'argument count') end
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local gid = ARGV[2]
if gid ~= '' and not valid_id(gid) then return err('BAD_ARGS', 'gid') end
local max = int(ARGV[3])
if max == nil or max < 1 or max > MAX_RATE_JOBS then return err('BAD_ARGS', 'max_jobs') end
local per = int(ARGV[4])
if per == nil or per < 1 then return err('BAD_ARGS', 'per_ms') end
local value = fmt(max) .. ' ' .. fmt(per)
local new
if gid == '' then
  new = redis.call('HSET', K_RATE, 'queue', value)
else
  new = redis.call('HSET', K_RATE, 'g:' .. gid, value)
  if new == 1 then redis.call('HINCRBY', K_RATE, 'groups', 1) end
  unpark_group(gid, now)
end
-- workers waiting out a limit look again
redis.call('PUBLISH', WAKE_CHANNEL, 'limits')
return {'OK', fmt(new)}
