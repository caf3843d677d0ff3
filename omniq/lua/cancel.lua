-- cancel: cancel a job (docs/control.md, "Cancelling a job").
-- ARGV: job_id, now_ms, [keep_failed: '' = keep every failed job, N = keep the newest N],
--   [events_maxlen]
-- Reply: {'OK', result, state}: result 'cancelled' (it was waiting or delayed: now failed
--   with error 'cancelled'), 'cancelling' (it is active: its worker is told), 'finished'
--   (completed or failed already) or 'not_found' (state ''); state is the state it was in.
--   | {'ERR', code}
local now = clock(ARGV[2])
if now == nil then return err('BAD_ARGS', 'now_ms') end
if not valid_id(ARGV[1]) then return err('BAD_JOB_ID') end
local keep_failed = keep_failed_arg(ARGV[3])
if keep_failed == nil then return err('BAD_ARGS', 'keep_failed') end
events_maxlen = events_arg(ARGV[4])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local result, state = cancel_one(ARGV[1], now, keep_failed)
if result == 'cancelled' then
  stamps[#stamps + 1] = 'last_finish_ms'
  expire_finished(now)
  settle_dependents(now)
  finish(now)
elseif result == 'cancelling' then
  trim_events()
end
return {'OK', result, state}
