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
-- per job: max_attempts, timeout_ms, backoff_ms (as stored), due, group_limit,
-- keep_completed_ms, keep_failed_ms, extras (a table, or nil)
local parsed = {}
for i = 0, n - 1 do
  local o = 2 + i * ENQUEUE_FIELDS
  local id = ARGV[o + 1]
  if not valid_id(id) then return err('BAD_JOB_ID', tostring(i)) end
  if seen[id] then return err('DUPLICATE', id) end
  seen[id] = true
  local payload = ARGV[o + 2]
  local c = string.sub(payload, 1, 1)
  if c ~= '{' and c ~= '[' then return err('BAD_PAYLOAD', id) end
  local ma, tm, bo = int(ARGV[o + 3]), int(ARGV[o + 4]), int(ARGV[o + 5])
  local due, delay, gl = int(ARGV[o + 6]), int(ARGV[o + 7]), int(ARGV[o + 9])
  if ma == nil or ma < 1 then return err('BAD_ARGS', 'max_attempts') end
  if tm == nil or tm < 1 then return err('BAD_ARGS', 'timeout_ms') end
  if bo == nil or bo < 0 then return err('BAD_ARGS', 'backoff_ms') end
  if due == nil or due < 0 then return err('BAD_ARGS', 'due_ms') end
  if delay == nil or delay < 0 then return err('BAD_ARGS', 'delay_ms') end
  if gl == nil or gl < 0 then return err('BAD_ARGS', 'group_limit') end
  local kc, kf = int(ARGV[o + 10]), int(ARGV[o + 11])
  if kc == nil or kc < 0 then return err('BAD_ARGS', 'keep_completed_ms') end
  if kf == nil or kf < 0 then return err('BAD_ARGS', 'keep_failed_ms') end
  local gid = ARGV[o + 8]
  if gid ~= '' and not valid_id(gid) then return err('BAD_GID', id) end
  local x = nil
  if ARGV[o + 12] ~= '' then
    local bad
    x, bad = parse_extras(ARGV[o + 12], gid, now)
    if x == nil then return err('BAD_ARGS', bad) end
  end
  local holder = nil
  if x and x.dedup_key then
    dedup_ids = dedup_ids or {}
    holder = batch_keys[x.dedup_key] or dedup_holder(x.dedup_key, now)
    if not holder then batch_keys[x.dedup_key] = id end
  end
  if not holder and redis.call('EXISTS', job_key(id)) == 1 then return err('DUPLICATE', id) end
  if delay > 0 then due = now + delay end
  parsed[i] = {canon(ARGV[o + 3], ma), canon(ARGV[o + 4], tm), canon(ARGV[o + 5], bo), due, gl,
    kc, kf, x, holder}
end

local ready, delayed = 0, 0
local grouped = false
local sn = fmt(now)
-- A duplicate publish with dedup='replace': the holder, still waiting or delayed, takes the
-- new payload; a delayed holder also the new due time when that is later (debounce).
local function replace_into(holder, payload, due)
  local hk = job_key(holder)
  local h = redis.call('HMGET', hk, 'state', 'due_ms')
  if h[1] ~= 'wait' and h[1] ~= 'delayed' then return false end
  redis.call('HSET', hk, 'payload', payload, 'updated_ms', fmt(now))
  if h[1] == 'delayed' and due > (tonumber(h[2] or '') or 0) then
    redis.call('HSET', hk, 'due_ms', fmt(due))
    redis.call('ZADD', K_DELAYED, due, holder)
  end
  return true
end

local replaced = false
for i = 0, n - 1 do
  local o = 2 + i * ENQUEUE_FIELDS
  local id, gid = ARGV[o + 1], ARGV[o + 8]
  local job = parsed[i]
  local due, gl = job[4], job[5]
  local jk = job_key(id)
  local holder = job[9]
  if dedup_ids then dedup_ids[i + 1] = holder or id end
  if holder then
    if job[8].dedup == 'replace' and replace_into(holder, ARGV[o + 2], due) then
      replaced = true
    end
  else
    if job[8] and job[8].dedup_key then
      dedup_take(id, job[8].dedup_key)
    end
    local fields = {jk, 'id', id, 'payload', ARGV[o + 2], 'state', 'wait', 'attempt', '0',
      'max_attempts', job[1], 'timeout_ms', job[2], 'backoff_ms', job[3],
      'created_ms', sn, 'updated_ms', sn, 'queued_ms', sn, 'first_started_ms', '',
      'last_started_ms', '', 'completed_ms', '', 'failed_ms', ''}
    if gid ~= '' then
      fields[#fields + 1] = 'gid'
      fields[#fields + 1] = gid
      -- the job keeps its group_limit: the group's limit key lives only while the group has
      -- work, and is set again from here when the job enters the wait list (D5)
      if gl > 0 then
        fields[#fields + 1] = 'group_limit'
        fields[#fields + 1] = fmt(gl)
      end
      grouped = true
    end
    -- omniq extension fields, only when set (official clients ignore them)
    if job[6] > 0 then
      fields[#fields + 1] = 'keep_completed_ms'
      fields[#fields + 1] = fmt(job[6])
    end
    if job[7] > 0 then
      fields[#fields + 1] = 'keep_failed_ms'
      fields[#fields + 1] = fmt(job[7])
    end
    if job[8] then extra_fields(fields, job[8]) end
    if due > now then
      fields[7] = 'delayed'
      fields[#fields + 1] = 'due_ms'
      fields[#fields + 1] = fmt(due)
    end
    redis.call('HSET', unpack(fields))
    if due > now then
      redis.call('ZADD', K_DELAYED, due, id)
      redis.call('ZADD', K_IDX_DELAYED, now, id)
      emit('delayed', id, gid, now, 'due', fmt(due))
      delayed = delayed + 1
    else
      push_ready(id, gid, now, gl)
      emit('enqueued', id, gid, now)
      ready = ready + 1
    end
  end
end
if grouped then redis.call('SET', K_HAS_GROUPS, '1') end
stamps[#stamps + 1] = 'last_enqueue_ms'
if ready + delayed > 0 or replaced then finish(now) end
local reply = {'OK', fmt(n)}
if dedup_ids then
  for i = 1, n do reply[i + 2] = dedup_ids[i] end
end
return reply
