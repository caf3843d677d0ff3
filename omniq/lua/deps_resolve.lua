-- deps_resolve: the outcome of dependencies on other queues reaches their dependents, jobs
-- of this queue ('R' ops, and 'L' ops whose dependency had ended; docs/workflows.md).
-- Idempotent: an outcome counts once per dependency.
-- ARGV: now_ms, n, then per outcome 4 fields: job_id (the dependent, of this queue),
--   dependency ref ("<queue>:<id>"), outcome ('completed' | 'failed' | 'gone'), result
--   (the dependency's result, '' for none), then optionally events_maxlen.
-- Reply: {'OK', n, per outcome: 'OK' | 'NO_JOB', then 'DEPS' when a dependent that failed
--   left work in this queue's outbox (its own dependents elsewhere)} | {'ERR', code, detail}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 1 or n > MAX_DEPS_OPS then return err('BAD_ARGS', 'count') end
if #ARGV ~= 2 + 4 * n and #ARGV ~= 3 + 4 * n then return err('BAD_ARGS', 'argument count') end
events_maxlen = events_arg(ARGV[3 + 4 * n])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local OUTCOMES = {completed = true, failed = true, gone = true}
for i = 0, n - 1 do
  local o = 2 + 4 * i
  if not valid_id(ARGV[o + 1]) then return err('BAD_JOB_ID', tostring(i)) end
  if not valid_ref(ARGV[o + 2]) then return err('BAD_ARGS', 'ref') end
  if not OUTCOMES[ARGV[o + 3]] then return err('BAD_ARGS', 'outcome') end
end
local out = {'OK', fmt(n)}
for i = 0, n - 1 do
  local o = 2 + 4 * i
  out[#out + 1] = dep_settle(ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], now)
end
settle_dependents(now)
finish(now)
if deps_out_n > 0 then out[#out + 1] = 'DEPS' end
return out
