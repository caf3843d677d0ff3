-- remove_job: delete a job that is not active from the lane it is in.
-- ARGV: job_id, lane (wait | delayed | failed | completed | gwait), [now_ms], [events_maxlen]
-- Reply: {'OK'} | {'ERR', code}
local now = clock(ARGV[3])
if now == nil then return err('BAD_ARGS', 'now_ms') end
events_maxlen = events_arg(ARGV[4])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local code = remove_one(ARGV[1], ARGV[2], now)
if code then return err(code) end
settle_dependents(now)
finish(now)
return {'OK'}
