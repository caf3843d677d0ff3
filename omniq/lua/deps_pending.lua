-- deps_pending: take the due work of this queue's dependency outbox (docs/workflows.md),
-- after an optional repair scan (jobs with dependents that another client ended).
-- A taken op is due again DEPS_RETRY_MS later unless deps_ack says it is done.
-- ARGV: now_ms, limit (1..MAX_DEPS_OPS), mode ('1': repair scan, then the due ops | '0':
--   the due ops | 'all': every op, due or not: a publisher that just wrote the jobs some
--   ops wait for), then optionally events_maxlen.
-- Reply: {'OK', n, per op: op, created_ms, result} | {'ERR', code, detail}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local limit = int(ARGV[2])
if limit == nil or limit < 1 or limit > MAX_DEPS_OPS then return err('BAD_ARGS', 'limit') end
local repair = ARGV[3]
if repair ~= '1' and repair ~= '0' and repair ~= 'all' then return err('BAD_ARGS', 'repair') end
if #ARGV > 4 then return err('BAD_ARGS', 'argument count') end
events_maxlen = events_arg(ARGV[4])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
if repair == '1' and deps_repair(now) > 0 then finish(now) end
local ops = redis.call('ZRANGEBYSCORE', B .. DEPS_OUT, '-inf', repair == 'all' and '+inf' or now,
  'LIMIT', 0, limit)
local out = {'OK', fmt(#ops)}
for _, op in ipairs(ops) do
  redis.call('ZADD', B .. DEPS_OUT, now + DEPS_RETRY_MS, op)
  local data = redis.call('HGET', B .. DEPS_OUTDATA, op) or ''
  local t = string.find(data, '\t', 1, true)
  out[#out + 1] = op
  out[#out + 1] = t and string.sub(data, 1, t - 1) or fmt(now)
  out[#out + 1] = t and string.sub(data, t + 1) or ''
end
return out
