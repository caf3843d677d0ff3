-- deps_link: register jobs of other queues as dependents of jobs of this queue: a publish
-- does it before it writes the dependent (docs/workflows.md), and the delivery of an 'L'
-- op of the dependent's queue does it for a dependency it could not register at once.
-- ARGV: now_ms, n, then per link 3 fields: job_id (of this queue), dependent ref
--   ("<queue>:<id>"), policy ('fail' | 'ignore' | 'wait').
-- Reply: {'OK', n, per link: outcome}: 'pending' (registered: it is settled when the job
--   ends), 'queued' (the job has ended: its outcome, with its result, is now an 'R' op of
--   this queue's outbox, delivered like an ack's; a failed job also registers a 'wait'
--   dependent) or 'gone' (no such job; nothing written) | {'ERR', code, detail}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 1 or n > MAX_DEPS_OPS then return err('BAD_ARGS', 'count') end
if #ARGV ~= 2 + 3 * n then return err('BAD_ARGS', 'argument count') end
for i = 0, n - 1 do
  local o = 2 + 3 * i
  if not valid_id(ARGV[o + 1]) then return err('BAD_JOB_ID', tostring(i)) end
  if not valid_ref(ARGV[o + 2]) then return err('BAD_ARGS', 'ref') end
  if not DEP_POLICIES[ARGV[o + 3]] then return err('BAD_ARGS', 'policy') end
end
local out = {'OK', fmt(n)}
for i = 0, n - 1 do
  local o = 2 + 3 * i
  local id, ref, policy = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local h = redis.call('HMGET', job_key(id), 'state', 'result')
  if not h[1] then
    out[#out + 1] = 'gone'
  elseif h[1] == 'completed' or h[1] == 'failed' then
    if h[1] == 'failed' and policy == 'wait' then dep_register(id, ref, policy, now, true) end
    local c = string.find(ref, ':', 1, true)
    deps_out('R\t' .. h[1] .. '\t' .. id .. '\t' .. string.sub(ref, 1, c - 1) .. '\t'
      .. string.sub(ref, c + 1), h[1] == 'completed' and (h[2] or '') or nil, now)
    out[#out + 1] = 'queued'
  else
    dep_register(id, ref, policy, now, false)
    out[#out + 1] = 'pending'
  end
end
return out
