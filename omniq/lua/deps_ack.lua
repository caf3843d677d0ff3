-- deps_ack: ops of this queue's dependency outbox that deps_pending handed out are done
-- (deleted) or must be tried again later (due DEPS_RETRY_MS from now).
-- ARGV: now_ms, n, then per op 2 fields: op, action ('done' | 'retry').
-- Reply: {'OK', removed} | {'ERR', code, detail}
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
local removed = 0
for i = 0, n - 1 do
  local op = ARGV[3 + 2 * i]
  if ARGV[4 + 2 * i] == 'done' then
    removed = removed + redis.call('ZREM', B .. DEPS_OUT, op)
    redis.call('HDEL', B .. DEPS_OUTDATA, op)
  else
    redis.call('ZADD', B .. DEPS_OUT, 'XX', now + DEPS_RETRY_MS, op)
  end
end
return {'OK', fmt(removed)}
