-- promote_delayed: move due delayed jobs to the tail of their lane (the retry of a
-- group_order='strict' job: to the head of its group); a job past its expires_ms ends
-- failed ('expired') instead.
-- ARGV: now_ms, max_promote, [events_maxlen]
-- Also deletes finished jobs whose keep_*_ms time is over (the worker calls it on a timer).
-- Reply: {'OK', count}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local max = int(ARGV[2] or fmt(DEFAULT_MAINTENANCE_BATCH))
if max == nil or max < 1 then return err('BAD_ARGS', 'max_promote') end
events_maxlen = events_arg(ARGV[3])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local expired = expire_finished(now)
local ids = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, max)
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', K_DELAYED, id)
  redis.call('ZREM', K_IDX_DELAYED, id)
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'gid', 'group_limit', 'group_order', 'attempt',
    'expires_ms')
  local gid = h[2] or ''
  -- a vanished hash is dropped, never resurrected as a partial job (D11)
  if h[1] and h[6] and (tonumber(h[6]) or 0) > 0 and tonumber(h[6]) <= now then
    -- past its expires_ms: it never runs (a strict retry frees the group it held)
    expire_job(id, jk, gid, now, K_IDX_DELAYED, 'delayed', h[5])
    if gid ~= '' then release_hold(gid, ':held', id, now) end
  elseif h[1] then
    redis.call('HSET', jk, 'state', 'wait', 'updated_ms', fmt(now))
    push_promoted(id, gid, now, h[3], h[4], h[5])
    emit('promoted', id, h[2], now)
    moved = moved + 1
  end
end
if #ids > 0 or expired > 0 then  -- (expired: finished jobs deleted)
  settle_dependents(now)
  finish(now)
end
return {'OK', fmt(moved)}
