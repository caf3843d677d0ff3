-- enqueue: publish one or more jobs into one queue, all or nothing.
-- ARGV: now_ms, count, then per job 8 fields:
--   job_id, payload, max_attempts, timeout_ms, backoff_ms, due_ms, delay_ms, gid, group_limit
-- (9 fields; due_ms is absolute, delay_ms relative to now; at most one is non-zero)
-- Reply: {'OK', n} | {'ERR', code, detail}
local FIELDS = 9
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 1 then return err('BAD_ARGS', 'count') end
if #ARGV ~= 2 + n * FIELDS then return err('BAD_ARGS', 'argument count') end
-- a logical queue that was partitioned takes jobs only in its partitions "{name.pI}"
-- (a client with a stale layout cache re-reads it on this refusal)
if redis.call('EXISTS', B .. ':partitions') == 1 then return err('PARTITIONED') end

-- validate everything before the first write
local seen = {}
for i = 0, n - 1 do
  local o = 2 + i * FIELDS
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
  local gid = ARGV[o + 8]
  if gid ~= '' and not valid_id(gid) then return err('BAD_GID', id) end
  if redis.call('EXISTS', job_key(id)) == 1 then return err('DUPLICATE', id) end
end

local ready, delayed = 0, 0
for i = 0, n - 1 do
  local o = 2 + i * FIELDS
  local id, gid = ARGV[o + 1], ARGV[o + 8]
  local due = tonumber(ARGV[o + 6])
  local delay = tonumber(ARGV[o + 7])
  if delay > 0 then due = now + delay end
  local jk = job_key(id)
  local sn = fmt(now)
  redis.call('HSET', jk, 'id', id, 'payload', ARGV[o + 2], 'state', 'wait', 'attempt', '0',
    'max_attempts', fmt(tonumber(ARGV[o + 3])), 'timeout_ms', fmt(tonumber(ARGV[o + 4])),
    'backoff_ms', fmt(tonumber(ARGV[o + 5])),
    'created_ms', sn, 'updated_ms', sn, 'queued_ms', sn, 'first_started_ms', '',
    'last_started_ms', '', 'completed_ms', '', 'failed_ms', '')
  local gl = tonumber(ARGV[o + 9])
  if gid ~= '' then
    redis.call('HSET', jk, 'gid', gid)
    redis.call('SET', K_HAS_GROUPS, '1')
    -- the job keeps its group_limit: the group's limit key lives only while the group has
    -- work, and is set again from here when the job enters the wait list (D5)
    if gl > 0 then redis.call('HSET', jk, 'group_limit', fmt(gl)) end
  end
  if due > now then
    redis.call('HSET', jk, 'state', 'delayed', 'due_ms', fmt(due))
    redis.call('ZADD', K_DELAYED, due, id)
    redis.call('ZADD', K_IDX_DELAYED, now, id)
    delayed = delayed + 1
  else
    push_ready(id, gid, now, gl)
    ready = ready + 1
  end
end
stamps[#stamps + 1] = 'last_enqueue_ms'
finish(now)
return {'OK', fmt(n)}
