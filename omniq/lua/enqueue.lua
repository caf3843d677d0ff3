-- enqueue: publish one or more jobs into one queue, all or nothing.
-- ARGV: now_ms, count, then per job ENQUEUE_FIELDS (12) fields:
--   job_id, payload, max_attempts, timeout_ms, backoff_ms, due_ms, delay_ms, gid, group_limit,
--   keep_completed_ms, keep_failed_ms, extras
-- then optionally events_maxlen.
-- (due_ms is absolute, delay_ms relative to now; at most one is non-zero. keep_*_ms: how
-- long the job is kept once completed / failed for good, 0 = only the count limits.
-- extras: '' or a JSON object of the job-control options, see parse_extras in lib.lua)
-- A job with a dedup_key that a live job holds (docs/control.md "Deduplication") is not
-- written: its id in the reply is the holder's, and with dedup='replace' a holder still
-- waiting or delayed takes its payload (a delayed one also its later due time).
-- A job with depends_on is written in state 'waiting_deps' and linked to its dependencies
-- (docs/workflows.md): those on this queue must exist or come earlier in the call
-- (DEP_NOT_FOUND) and have fewer than MAX_DEPENDENTS dependents (DEP_LIMIT); those on
-- other queues are registered by the client before (deps_link: 'linked'), or get an 'L'
-- op in the dependency outbox.
-- Reply: {'OK', n} (no job had a dedup_key) | {'OK', n, id_1 .. id_n} (the id each job
--   has now: its own, or the holder's) | {'ERR', code, detail}
-- (n counts the jobs given, written or not.)
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 1 then return err('BAD_ARGS', 'count') end
if #ARGV ~= 2 + n * ENQUEUE_FIELDS and #ARGV ~= 3 + n * ENQUEUE_FIELDS then
  return err('BAD_ARGS', 'argument count')
end
events_maxlen = events_arg(ARGV[3 + n * ENQUEUE_FIELDS])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
-- a logical queue that was partitioned takes jobs only in its partitions "{name.pI}"
-- (a client with a stale layout cache re-reads it on this refusal)
if redis.call('EXISTS', B .. ':partitions') == 1 then return err('PARTITIONED') end

-- validate everything before the first write
local seen = {}
local dedup_ids = nil  -- per job, with any dedup_key in the call: the id it ends up with
local batch_keys = {}  -- dedup key -> id of an earlier job of this call that holds it
-- per job: parse_job's table, its [9] the live job holding its dedup key (or false)
local parsed = {}
local added = {}  -- dependency id on this queue -> its dependents once this call is written
local deduped = {}  -- id of a job of this call not written -> the live job holding its key
for i = 0, n - 1 do
  local o = 2 + i * ENQUEUE_FIELDS
  local id = ARGV[o + 1]
  if seen[id] then return err('DUPLICATE', id) end  -- (seen holds valid ids only)
  local job, code, detail = parse_job(ARGV, o, now, i)
  if not job then return err(code, detail) end
  local x = job[8]
  if x and x.depends_on then
    -- a dependency on this queue exists already or comes earlier in this call (the
    -- client orders a flow's jobs so); one on another queue was checked by the client
    local qname = string.sub(B, 2, -2)
    local mine = {}
    for _, r in ipairs(x.depends_on) do
      if r[1] == qname then
        if r[2] == id then return err('DEP_CYCLE', id) end
        -- an earlier job of the call that a live job's dedup key stood for: that job
        -- (given twice so: refused, as a dependency given twice is)
        r[2] = deduped[r[2]] or r[2]
        if mine[r[2]] then return err('BAD_ARGS', 'depends_on') end
        mine[r[2]] = true
        if not seen[r[2]] and redis.call('EXISTS', job_key(r[2])) == 0 then
          return err('DEP_NOT_FOUND', qname .. ':' .. r[2])
        end
        -- (counting those this call adds)
        local n_deps = (added[r[2]] or redis.call('HLEN', job_key(r[2]) .. ':dependents')) + 1
        if n_deps > MAX_DEPENDENTS then return err('DEP_LIMIT', qname .. ':' .. r[2]) end
        added[r[2]] = n_deps
      end
    end
  end
  seen[id] = true
  local holder = nil
  if x and x.dedup_key then
    dedup_ids = dedup_ids or {}
    holder = batch_keys[x.dedup_key] or dedup_holder(x.dedup_key, now)
    if not holder then batch_keys[x.dedup_key] = id else deduped[id] = holder end
  end
  if not holder and redis.call('EXISTS', job_key(id)) == 1 then return err('DUPLICATE', id) end
  job[9] = holder or false
  parsed[i] = job
end

local written = 0
local grouped = false
local replaced = false
local sn = fmt(now)
for i = 0, n - 1 do
  local o = 2 + i * ENQUEUE_FIELDS
  local id, gid = ARGV[o + 1], ARGV[o + 8]
  local job = parsed[i]
  local holder = job[9]
  if dedup_ids then dedup_ids[i + 1] = holder or id end
  if holder then
    if job[8].dedup == 'replace' and dedup_replace(holder, ARGV[o + 2], job[4], now) then
      replaced = true
    end
  else
    write_job(id, gid, ARGV[o + 2], job, now, sn, nil)
    if job[8] and job[8].depends_on then
      link_deps(id, job[8].depends_on, job[8].dep_policy or 'fail', now)
    end
    written = written + 1
    if gid ~= '' then grouped = true end
  end
end
if grouped then redis.call('SET', K_HAS_GROUPS, '1') end
stamps[#stamps + 1] = 'last_enqueue_ms'
if written > 0 or replaced then
  settle_dependents(now)  -- (a job failed at once by a failed dependency has dependents)
  finish(now)
end
local reply = {'OK', fmt(n)}
if dedup_ids then
  for i = 1, n do reply[i + 2] = dedup_ids[i] end
end
return reply
