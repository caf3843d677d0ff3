-- retry_failed: move a failed job back to the tail of its lane with attempt 0 (the job
-- that blocks its strict group: to the head of the group, ending the block).
-- ARGV: job_id, now_ms, [events_maxlen]
-- Reply: {'OK'} | {'ERR', code}
local now = clock(ARGV[2])
if now == nil then return err('BAD_ARGS', 'now_ms') end
events_maxlen = events_arg(ARGV[3])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local code = retry_failed_one(ARGV[1], now)
if code then return err(code) end
finish(now)
return {'OK'}
