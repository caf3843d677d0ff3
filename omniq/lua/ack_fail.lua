-- ack_fail: fail a leased job; it retries after backoff_ms or ends failed.
-- ARGV: job_id, now_ms, lease_token, [error text], [final: '1' = fail for good, no retry]
-- Reply: {'RETRY', due_ms} | {'FAILED'} | {'ERR', code}
local now = clock(ARGV[2])
if now == nil then return err('BAD_ARGS', 'now_ms') end
if not valid_id(ARGV[1]) then return err('BAD_JOB_ID') end
local status, value = ack_fail_one(ARGV[1], ARGV[3], now, ARGV[4], ARGV[5] == '1')
if status == 'ERR' then return err(value) end
redis.call('HSET', K_STATS, 'last_finish_ms', fmt(now))
finish(now)
if status == 'RETRY' then return {'RETRY', value} end
return {'FAILED'}
