-- ack_reserve: settle finished leases and reserve the next jobs in one round trip.
-- ARGV: now_ms, keep_completed, n_acks, then per ack 4 fields:
--   job_id, lease_token, outcome ('S' success | 'F' failure | 'X' failure, no retry),
--   text (result | error)
-- then reserve_count (0 = do not reserve), then optionally keep_failed ('' = keep every
-- failed job, N = keep the newest N) and events_maxlen.
-- Reply: {n_acks, per ack: status, value ('OK','' | 'RETRY',due | 'FAILED','' | 'ERR',code;
--         'OK' and 'FAILED' have value 'DEPS' when the ack left work for other queues in
--         the dependency outbox, docs/workflows.md),
--         then the reserve reply when reserve_count > 0 (see reserve.lua)}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local keep = int(ARGV[2])
if keep == nil or keep < 0 then return err('BAD_ARGS', 'keep_completed') end
local n = int(ARGV[3])
if n == nil or n < 0 or n > MAX_ACKS then return err('BAD_ARGS', 'count') end
if #ARGV < 4 + 4 * n or #ARGV > 6 + 4 * n then return err('BAD_ARGS', 'argument count') end
local count = int(ARGV[4 + 4 * n])
if count == nil or count < 0 or count > MAX_RESERVE then return err('BAD_ARGS', 'reserve_count') end
local keep_failed = keep_failed_arg(ARGV[5 + 4 * n])
if keep_failed == nil then return err('BAD_ARGS', 'keep_failed') end
events_maxlen = events_arg(ARGV[6 + 4 * n])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
for i = 0, n - 1 do
  local o = 3 + 4 * i
  if not lease_id(ARGV[o + 1]) then return err('BAD_JOB_ID', tostring(i)) end
  local kind = ARGV[o + 3]
  if kind ~= 'S' and kind ~= 'F' and kind ~= 'X' then return err('BAD_ARGS', 'outcome') end
end
local out = {fmt(n)}
local wrote = false  -- a refused ack writes nothing, as with the single acks
for i = 0, n - 1 do
  local o = 3 + 4 * i
  local id, token, kind, text = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local before = deps_out_n
  if kind == 'S' then
    if push_status(out, ack_success_one(id, token, now, text, keep)) then wrote = true end
  else
    local status, value = ack_fail_one(id, token, now, text, kind == 'X', keep_failed)
    out[#out + 1] = status
    out[#out + 1] = value
    if status ~= 'ERR' then wrote = true end
  end
  if dep_work then
    settle_dependents(now)
    -- the worker delivers the outbox ops this ack wrote at once (docs/workflows.md)
    if deps_out_n > before then out[#out] = 'DEPS' end
  end
end
if wrote then
  stamps[#stamps + 1] = 'last_finish_ms'
  expire_finished(now)
  settle_dependents(now)
end
if count > 0 and (reserve_into(out, count, now) > 0 or expired_n > 0) then
  wrote = true
  settle_dependents(now)  -- (the dependents of jobs the reservation expired)
end
if wrote then
  -- our own reservation already took what the acks released; others may still want it
  finish(now)
end
return out
