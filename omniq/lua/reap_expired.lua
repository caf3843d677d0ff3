-- reap_expired: end leases whose lock expired (lock_until_ms <= now).
-- ARGV: now_ms, max_reap, [keep_failed: '' = keep every failed job, N = keep the newest N],
--   [events_maxlen]
-- Reply: {'OK', count}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local max = int(ARGV[2] or fmt(DEFAULT_MAINTENANCE_BATCH))
if max == nil or max < 1 then return err('BAD_ARGS', 'max_reap') end
local keep_failed = keep_failed_arg(ARGV[3])
if keep_failed == nil then return err('BAD_ARGS', 'keep_failed') end
events_maxlen = events_arg(ARGV[4])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local ids = redis.call('ZRANGEBYSCORE', K_ACTIVE, '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(ids) do
  redis.call('ZREM', K_ACTIVE, id)
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'gid', 'lock_until_ms', 'attempt')
  end_lease(id, h[2], now)
  if not h[1] then
    redis.call('ZREM', K_IDX_ACTIVE, id)
  else
    -- record why it ended (D22)
    local text = 'LeaseExpired: lease expired at ' .. (h[3] or '?')
    redis.call('HSET', jk, 'last_error', text, 'last_error_ms', fmt(now))
    emit('lease_expired', id, h[2], now, 'attempt', h[4] or '0', 'error', text)
    fail_or_retry(id, jk, now, false, keep_failed, text)
  end
end
-- A lease of ours that another client ended (an official consumer's reap) leaves its
-- B:leases entry behind. Once there are more entries than active leases, drop every entry
-- whose id is no longer active (an entry is always written and deleted with its lease).
if redis.call('HLEN', K_LEASES) > redis.call('ZCARD', K_ACTIVE) then
  for _, id in ipairs(redis.call('HKEYS', K_LEASES)) do
    if not redis.call('ZSCORE', K_ACTIVE, id) then redis.call('HDEL', K_LEASES, id) end
  end
end
if #ids > 0 then
  expire_finished(now)
  settle_dependents(now)
  finish(now)
end
return {'OK', fmt(#ids)}
