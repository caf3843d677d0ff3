-- progress: store the latest progress value of a leased job and emit a 'progress' event.
-- ARGV: job_id, lease_token, value (JSON text, 1..MAX_PROGRESS_BYTES bytes), now_ms,
--   [events_maxlen]
-- Reply: {'OK'} | {'ERR', code}
local now = clock(ARGV[4])
if now == nil then return err('BAD_ARGS', 'now_ms') end
events_maxlen = events_arg(ARGV[5])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local id, value = ARGV[1], ARGV[3]
if not lease_id(id) then return err('BAD_JOB_ID') end
if value == nil or value == '' or #value > MAX_PROGRESS_BYTES then
  return err('BAD_ARGS', 'progress')
end
local code = check_lease(id, ARGV[2])
if code then return err(code) end
local jk = job_key(id)
redis.call('HSET', jk, 'progress', value, 'progress_ms', fmt(now))
local h = redis.call('HMGET', jk, 'gid', 'attempt')
emit('progress', id, h[1], now, 'attempt', h[2] or '0', 'progress', value)
trim_events()
return {'OK'}
