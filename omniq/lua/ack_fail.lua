-- ack_fail: fail a leased job; it retries after its backoff (backoff_delay in lib.lua) or
-- ends failed.
-- ARGV: job_id, now_ms, lease_token, [error text], [final: '1' = fail for good, no retry],
--   [keep_failed: '' = keep every failed job, N = keep the newest N], [events_maxlen]
-- Reply: {'RETRY', due_ms} | {'FAILED'} | {'FAILED', 'DEPS'} (see ack_success) | {'ERR', code}
local now = clock(ARGV[2])
if now == nil then return err('BAD_ARGS', 'now_ms') end
if not lease_id(ARGV[1]) then return err('BAD_JOB_ID') end
local keep_failed = keep_failed_arg(ARGV[6])
if keep_failed == nil then return err('BAD_ARGS', 'keep_failed') end
events_maxlen = events_arg(ARGV[7])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local status, value = ack_fail_one(ARGV[1], ARGV[3], now, ARGV[4], ARGV[5] == '1', keep_failed)
if status == 'ERR' then return err(value) end
stamps[#stamps + 1] = 'last_finish_ms'
settle_dependents(now)
local deps = deps_out_n > 0
expire_finished(now)
settle_dependents(now)
finish(now)
if status == 'RETRY' then return {'RETRY', value} end
if deps then return {'FAILED', 'DEPS'} end
return {'FAILED'}
