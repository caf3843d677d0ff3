-- deps_link: register jobs of other queues as dependents of jobs of this queue (an 'L' op
-- of their queue's outbox, delivered by resolve_dependencies; docs/workflows.md).
-- ARGV: now_ms, n, then per link 3 fields: job_id (of this queue), dependent ref
--   ("<queue>:<id>"), policy ('fail' | 'ignore' | 'wait').
-- Reply: {'OK', n, per link: outcome, result}: outcome 'pending' (registered: it is
--   settled when the job ends), 'completed' (with the job's result), 'failed' (registered
--   too when the policy is 'wait') or 'gone' (no such job) | {'ERR', code, detail}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 1 or n > MAX_DEPS_OPS then return err('BAD_ARGS', 'count') end
if #ARGV ~= 2 + 3 * n then return err('BAD_ARGS', 'argument count') end
for i = 0, n - 1 do
  local o = 2 + 3 * i
  if not valid_id(ARGV[o + 1]) then return err('BAD_JOB_ID', tostring(i)) end
  local ref = ARGV[o + 2]
  local c = string.find(ref, ':', 1, true)
  if not c or not valid_queue(string.sub(ref, 1, c - 1)) or not valid_id(string.sub(ref, c + 1)) then
    return err('BAD_ARGS', 'ref')
  end
  if not DEP_POLICIES[ARGV[o + 3]] then return err('BAD_ARGS', 'policy') end
end
local out = {'OK', fmt(n)}
for i = 0, n - 1 do
  local o = 2 + 3 * i
  local id, ref, policy = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local h = redis.call('HMGET', job_key(id), 'state', 'result')
  if not h[1] then
    out[#out + 1], out[#out + 2] = 'gone', ''
  elseif h[1] == 'completed' then
    out[#out + 1], out[#out + 2] = 'completed', h[2] or ''
  else
    if h[1] ~= 'failed' or policy == 'wait' then dep_register(id, ref, policy, now) end
    out[#out + 1], out[#out + 2] = h[1] == 'failed' and 'failed' or 'pending', ''
  end
end
return out
