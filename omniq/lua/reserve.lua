-- reserve: lease up to count jobs.
-- ARGV: now_ms, count (1..1000), [events_maxlen]
-- Reply: {'PAUSED'} | {'EMPTY'} | {'LIMITED', retry_after_ms, scope} | {'JOB', n, then per
--   job: id, payload, lock_until_ms, attempt, max_attempts, gid, lease_token, timeout_ms,
--   run_timeout_ms}
-- Jobs met past their expires_ms end failed ('expired') on the way (at most
-- MAX_EXPIRED_PER_CALL per call: when that budget ran out before a job was found, the
-- reply is {'EMPTY', 'MORE'}: call again).
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local count = int(ARGV[2] or '1')
if count == nil or count < 1 or count > MAX_RESERVE then return err('BAD_ARGS', 'count') end
events_maxlen = events_arg(ARGV[3])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local out = {}
if reserve_into(out, count, now) > 0 or expired_n > 0 then
  settle_dependents(now)  -- (an expired job's dependents)
  finish(now)
end
return out
