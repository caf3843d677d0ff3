-- deps_ack: ops of this queue's dependency outbox that deps_pending handed out are done
-- (deleted), or found no job to deliver to ('retry': due again DEPS_RETRY_MS from now;
-- deleted instead once the op is DEPS_ORPHAN_MS old, by this server's clock: the job
-- never appeared, docs/workflows.md).
-- ARGV: now_ms, n, then per op 2 fields: op, action ('done' | 'retry').
-- Reply: {'OK', removed, dropped} (dropped: 'retry' ops deleted as too old) |
--   {'ERR', code, detail}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 1 or n > MAX_DEPS_OPS then return err('BAD_ARGS', 'count') end
if #ARGV ~= 2 + 2 * n then return err('BAD_ARGS', 'argument count') end
for i = 0, n - 1 do
  local a = ARGV[4 + 2 * i]
  if ARGV[3 + 2 * i] == '' then return err('BAD_ARGS', 'op') end
  if a ~= 'done' and a ~= 'retry' then return err('BAD_ARGS', 'action') end
end
local out_key, data_key = B .. DEPS_OUT, B .. DEPS_OUTDATA
local removed, dropped = 0, 0
for i = 0, n - 1 do
  local op = ARGV[3 + 2 * i]
  local drop = ARGV[4 + 2 * i] == 'done'
  if not drop then
    local data = redis.call('HGET', data_key, op)
    local created = data and tonumber(string.match(data, '^(%d+)\t'))
    if created and created + DEPS_ORPHAN_MS <= now then
      drop = true
      dropped = dropped + 1
    end
  end
  if drop then
    removed = removed + redis.call('ZREM', out_key, op)
    redis.call('HDEL', data_key, op)
  else
    redis.call('ZADD', out_key, 'XX', now + DEPS_RETRY_MS, op)
  end
end
return {'OK', fmt(removed), fmt(dropped)}
