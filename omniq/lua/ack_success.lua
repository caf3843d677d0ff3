-- ack_success: complete a leased job.
-- ARGV: job_id, now_ms, lease_token, [result], [keep_completed=100], [events_maxlen]
-- Reply: {'OK'} | {'OK', 'DEPS'} (work left in the dependency outbox) | {'ERR', code}
local now = clock(ARGV[2])
if now == nil then return err('BAD_ARGS', 'now_ms') end
if not lease_id(ARGV[1]) then return err('BAD_JOB_ID') end
local keep = int(ARGV[5] or fmt(DEFAULT_KEEP_COMPLETED))
if keep == nil or keep < 0 then return err('BAD_ARGS', 'keep_completed') end
events_maxlen = events_arg(ARGV[6])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local code = ack_success_one(ARGV[1], ARGV[3], now, ARGV[4], keep)
if code then return err(code) end
stamps[#stamps + 1] = 'last_finish_ms'
settle_dependents(now)
local deps = deps_out_n > 0
expire_finished(now)
settle_dependents(now)
finish(now)
if deps then return {'OK', 'DEPS'} end
return {'OK'}
