-- heartbeat: extend leases to now + timeout_ms (fixes D1: never cumulative).
-- ARGV: now_ms, count, then per lease: job_id, lease_token
-- Reply: {'OK', n, then per lease: 'OK', lock_until_ms | 'CANCEL', lock_until_ms (the
--   lease is extended but the job's cancel was requested) | 'ERR', code}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 1 or n > MAX_LEASES then return err('BAD_ARGS', 'count') end
if #ARGV ~= 2 + 2 * n then return err('BAD_ARGS', 'argument count') end
local out = {'OK', fmt(n)}
for i = 0, n - 1 do
  local id, token = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local code = nil
  if not lease_id(id) then code = 'BAD_JOB_ID' else code = check_lease(id, token) end
  if code then
    out[#out + 1] = 'ERR'
    out[#out + 1] = code
  else
    local jk = job_key(id)
    local h = redis.call('HMGET', jk, 'timeout_ms', 'cancel_requested_ms')
    local timeout = tonumber(h[1] or '') or 0
    if timeout <= 0 then timeout = FALLBACK_LEASE_MS end
    local lock = now + timeout
    redis.call('ZADD', K_ACTIVE, lock, id)
    redis.call('HSET', jk, 'lock_until_ms', fmt(lock), 'updated_ms', fmt(now))
    out[#out + 1] = h[2] and 'CANCEL' or 'OK'  -- CANCEL: stop the handler (cancel.lua)
    out[#out + 1] = fmt(lock)
  end
end
return out
