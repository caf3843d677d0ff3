-- omniq shared Lua library. Prepended to every queue script by omniq/_scripts.py.
-- Written for omniq from docs/protocol.md; data layout = OmniQ v1 (v4 scripts).
--
-- KEYS[1] is the queue anchor "{name}:meta"; every other key is derived from the base
-- "{name}" so the whole queue lives in one cluster slot.
-- All time arguments are integer milliseconds. A now_ms of "0" or "" means "server clock".
--
-- The same code runs as scripts (EVALSHA: the chunk runs on every call) and as one Redis
-- Functions library (the chunk runs once, at FUNCTION LOAD; omniq/_scripts.py). For the
-- library, a top-level definition that reads KEYS/ARGV (or such a name), or whose name is
-- lower-case, is assigned again at the start of every call: keep per-call state in
-- lower-case names, and never change an upper-case table (it is shared by every call).

-- Limits shared with omniq/_limits.py (one owner each: tests/core/test_limits.py checks
-- that both sides agree). Numeric constants are linked into every script, the standalone
-- parent/child scripts included.
local MAX_INT = 9007199254740991
local MAX_ID_LENGTH = 256
local MAX_BATCH = 100
local MAX_ERROR_BYTES = 4096
local MAX_RESERVE = 1000
local MAX_LEASES = 10000
local MAX_ACKS = 10000
local MAX_PARTITIONS = 1024
-- Most failed jobs one call trims (keep_failed): a large backlog shrinks over several
-- calls instead of blocking the server in one.
local MAX_FAILED_TRIM = 1000
-- Lease length for a job whose stored timeout_ms is missing or <= 0 (the v1 rule).
local FALLBACK_LEASE_MS = 60000
local DEFAULT_MAINTENANCE_BATCH = 1000
local DEFAULT_KEEP_COMPLETED = 100
local ENQUEUE_FIELDS = 12
-- Most finished jobs one call deletes because their keep_*_ms time is over.
local MAX_EXPIRE_TRIM = 1000
-- Longest progress value (JSON text) a job keeps.
local MAX_PROGRESS_BYTES = 65536
-- Lua side only: bounds on the work of one reservation.
local MAX_GROUP_POPS = 10
local MAX_ORPHAN_SKIPS = 100
-- Most parked (rate-limited) groups one reservation moves back to groups:ready.
local MAX_UNPARK = 100
-- Largest max_jobs of a rate limit (its window log holds at most that many entries).
local MAX_RATE_JOBS = 100000
-- Schedules (docs/schedules.md): the most occurrences one fire publishes for a schedule
-- (misfire='all' after downtime), the shortest interval, and the most due schedules one
-- read returns.
local MAX_SCHEDULE_CATCHUP = 100
local MIN_EVERY_MS = 1000
local MAX_SCHEDULES_DUE = 100
-- Most entries one page read returns (schedule_read 'page').
local MAX_PAGE = 1000
-- expired jobs one reserve call fails at most (the rest wait for the next call, which the
-- wake-up signal asks for when this budget ran out before a job was found)
local MAX_EXPIRED_PER_CALL = 100
-- Dependencies (docs/workflows.md): the most dependencies (and pre-registered dependents)
-- of one job, the most dependents a publish may add to a job (one call settles them all
-- when it ends), the longest queue name in a dependency ref, how long a claimed outbox op
-- waits before another deliverer may take it, how long an op whose target job does not
-- exist yet is kept (a flow's parent is published right after its children), the most ops
-- one call takes, and the most jobs one repair scan looks at.
local MAX_DEPENDENCIES = 1000
local MAX_DEPENDENTS = 10000
local MAX_NAME_LENGTH = 128
local DEPS_RETRY_MS = 5000
local DEPS_ORPHAN_MS = 600000
local MAX_DEPS_OPS = 1000
local MAX_DEPS_REPAIR = 100
-- Lua side only: how long the repair scan waits before it looks at a job again.
local DEPS_REPAIR_MS = 60000

local ANCHOR = KEYS[1]
local B = ANCHOR
if string.sub(B, -5) == ':meta' then B = string.sub(B, 1, -6) end

local K_WAIT = B .. ':wait'
local K_DELAYED = B .. ':delayed'
local K_ACTIVE = B .. ':active'
local K_COMPLETED = B .. ':completed'
local K_FAILED = B .. ':failed'
local K_PAUSED = B .. ':paused'
local K_READY = B .. ':groups:ready'
local K_HAS_GROUPS = B .. ':has_groups'
local K_RR = B .. ':lane:rr'
local K_SEQ = B .. ':lease:seq'
local K_STATS = B .. ':stats'
local K_IDX_WAIT = B .. ':idx:wait'
local K_IDX_ACTIVE = B .. ':idx:active'
local K_IDX_DELAYED = B .. ':idx:delayed'
local K_IDX_COMPLETED = B .. ':idx:completed'
-- (joined where used: a per-call name would cost every call of the scripts that link it,
-- enqueue among them, for paths most calls never take)
local IDX_FAILED = ':idx:failed'
-- omniq extension: job id -> gid for grouped leases taken by omniq, so a lease whose job
-- hash vanished still releases its group slot (fixes D4). Official clients ignore it.
local K_LEASES = B .. ':leases'
local WAKE_CHANNEL = B .. ':wake'
-- omniq extension: the queue's lifecycle events, a stream written by the script that makes
-- each transition (docs/events.md). Official clients neither write nor read it.
local K_EVENTS = B .. ':events'
-- omniq extension: finished jobs kept for a time (keep_completed_ms / keep_failed_ms),
-- scored by the time they may be deleted.
local K_EXPIRE = B .. ':expire'
-- omniq extension: rate limits (docs/control.md). K_RATE holds them: field 'queue' (the
-- queue-wide limit) and 'g:<gid>' (one group's), each "max_jobs per_ms", and 'groups', how
-- many group limits there are. K_RATE_LOG (queue-wide) and gkey(gid, ':rate_log') are
-- sliding-window logs: zsets of reservation times, one entry per lease (its token).
-- K_LIMITED holds the groups a limit parked, scored by when they may run again.
-- Official clients neither read nor write them.
local K_RATE = B .. ':rate_limits'
local K_RATE_LOG = B .. ':rate_log'
local K_LIMITED = B .. ':groups:limited'
-- omniq extension: deduplication (docs/control.md). B:dedup:<key> is a hash: 'id', the job
-- published with dedup_key <key>, which holds the key while it is waiting, delayed or
-- active; when it finishes the key is deleted, or given 'until' (finish time +
-- dedup_ttl_ms, on the scripts' clock) and a PEXPIRE of dedup_ttl_ms that only collects
-- it. A key whose job finished without releasing it (an official worker acked it) is
-- stale: the next publish with that key takes it over. Official clients ignore it.
local DEDUP_PREFIX = B .. ':dedup:'
-- omniq extension: schedules (docs/schedules.md). K_SCHEDULES is a zset of the queue's
-- schedule names scored by their next fire time ('+inf' while paused or ended); schedule
-- <name> is the hash B:schedule:<name>: its definition (SCHED_DEF), its job template and
-- its state. Official clients neither read nor write them.
local K_SCHEDULES = B .. ':schedules'
local SCHED_PREFIX = B .. ':schedule:'
-- omniq extension: dependencies (docs/workflows.md, protocol.md 2.11). B .. WAITING_DEPS:
-- the jobs in state 'waiting_deps' (id -> when they entered it). A dependency B keeps its
-- dependents in the hash B:job:<B>:dependents (ref "<queue>:<id>" -> policy) and the field
-- 'dependents' in its job hash while that hash exists; B .. DEPS_SRC lists such jobs (score:
-- when the repair scan looks at them next). B .. DEPS_OUT is the outbox of work for other
-- queues (op -> when it may be taken), B .. DEPS_OUTDATA op -> "<created_ms>\t<result>".
-- (suffixes of B, joined where used: these keys are needed on rare paths only, and a key
-- name made at the start of every call would cost every call of the hot scripts)
local WAITING_DEPS = ':waiting_deps'
local DEPS_SRC = ':deps:src'
local DEPS_OUT = ':deps:out'
local DEPS_OUTDATA = ':deps:outdata'
local DEP_POLICIES = {fail = true, ignore = true, wait = true}
-- The definition fields of a schedule, in the order schedule_set.lua takes them: the
-- timing, then the job template (enqueue's fields without id, due_ms and delay_ms).
local SCHED_DEF = {'cron', 'every_ms', 'tz', 'start_ms', 'end_ms', 'misfire',
  'misfire_grace_ms', 'jitter_ms', 'payload', 'max_attempts', 'timeout_ms', 'backoff_ms',
  'gid', 'group_limit', 'keep_completed_ms', 'keep_failed_ms', 'extras'}
local SCHED_MISFIRE = {once = true, skip = true, all = true}
-- What schedule_read returns of each schedule: its name, its definition, then its state.
local SCHED_READ = {'name', 'cron', 'every_ms', 'tz', 'start_ms', 'end_ms', 'misfire',
  'misfire_grace_ms', 'jitter_ms', 'payload', 'max_attempts', 'timeout_ms', 'backoff_ms',
  'gid', 'group_limit', 'keep_completed_ms', 'keep_failed_ms', 'extras', 'rev', 'next_ms',
  'paused', 'anchor_ms', 'last_ms', 'last_job_id', 'fired_ms', 'fires', 'misfired_ms',
  'created_ms', 'updated_ms'}
local CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

-- MAXLEN ~ of the event stream, from the script's events_maxlen argument (0: no events)
local events_maxlen = 0
local events_written = false  -- the stream is trimmed once, at the end of the call
-- whether `now` came from the caller (then every event carries it as 'ms'; with the server
-- clock the entry id holds that time already)
local now_given = false


local wake_needed = false
local expired_n = 0  -- jobs this call failed because their expires_ms had passed
-- dependencies: jobs of this queue that ended with dependents to settle ({id, outcome,
-- result}), settled by settle_dependents; and how many outbox ops this call wrote
local dep_work = false  -- (a table once a job has been added)
local deps_out_n = 0
-- last_*_ms stats fields to set with the stats write at the end of the script
local stamps = {}

-- Groups served by this call that still have capacity and work, in service order. They
-- are offered again only after every group already in line, and put back into
-- groups:ready when the call ends: re-adding them at once would tie on score "now" with
-- the others, and ties go by gid, so one batch would keep serving the same group.
local served = {}
local served_head, served_tail = 1, 0

-- Rate limits of this call (see rate_begin): whether the queue has group limits, the
-- group limits read so far (gid -> {max, per} | false) and the queue-wide window (per_ms).
local rate = {groups = false, cache = {}, queue_per = nil}

local function job_key(id) return B .. ':job:' .. id end
local function gkey(gid, suffix) return B .. ':g:' .. gid .. suffix end

local function err(code, detail)
  if detail ~= nil then return {'ERR', code, detail} end
  return {'ERR', code}
end

-- Integer argument or nil: only decimal digits with an optional '-' (no fractions,
-- exponents, hex, blanks or non-finite values), and at most 2^53 - 1 in magnitude, the
-- largest integer a Lua number (and JavaScript) holds exactly.
local function int(v)
  if type(v) ~= 'string' or not string.find(v, '^%-?%d+$') then return nil end
  local n = tonumber(v)
  if n == nil or n > MAX_INT or n < -MAX_INT then return nil end
  return n
end

local function fmt(n) return string.format('%d', n) end

-- A job of this queue ended with dependents to settle ({id, outcome, result}); the
-- script settles them with settle_dependents before it ends.
local function dep_push(w)
  if not dep_work then dep_work = {} end
  dep_work[#dep_work + 1] = w
end

-- Job `id` (hash `jk`, in `state`), which has dependents, is being deleted: they settle as
-- completed (with its stored result) when it had completed, else as gone. (A completed
-- job still has dependents only when another client completed it: our acks settle them.)
local function settle_deleted(id, jk, state)
  if state == 'completed' then
    dep_push({id, 'completed', redis.call('HGET', jk, 'result') or ''})
  else
    dep_push({id, 'gone', false})
  end
end

-- Append one per-item status to a reply: 'OK', '' or 'ERR', code. True when OK.
local function push_status(out, code)
  if code then
    out[#out + 1] = 'ERR'
    out[#out + 1] = code
    return false
  end
  out[#out + 1] = 'OK'
  out[#out + 1] = ''
  return true
end

-- The stored text of a validated non-negative integer argument: the argument itself when
-- it is already canonical (no sign, no leading zero), else its canonical form.
local function canon(v, n)
  local b = string.byte(v, 1)
  if (b ~= 48 and b ~= 45) or v == '0' then return v end  -- '0' or '-' first: rewrite
  return fmt(n)
end

-- "now": an explicit positive integer, else the server clock.
local function clock(v)
  if v == nil or v == '' or v == '0' then
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  local n = int(v)
  if n == nil or n < 0 then return nil end
  if n == 0 then
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  now_given = true
  return n
end

local function valid_id(id)
  return id ~= nil and id ~= '' and #id <= MAX_ID_LENGTH and not string.find(id, '%c')
end

-- An id that reserve handed out: any non-empty string. Other clients (the official ones)
-- create ids without the publish rules above, and a lease on such a job must still
-- heartbeat and ack.
local function lease_id(id)
  return id ~= nil and id ~= ''
end

-- events_maxlen argument: '' or missing = no events, else an integer >= 0; nil when malformed.
local function events_arg(v)
  if v == nil or v == '' then return 0 end
  local n = int(v)
  if n == nil or n < 0 then return nil end
  return n
end

-- Append one lifecycle event: its type, the job id ('' for queue events), 'ms' when the
-- caller set the clock, the gid when there is one, then up to three field/value pairs of
-- the type (strings). Every redis.call, and every argument of one, costs: the common events
-- (no gid, the server clock) take a short path, and the stream is trimmed once per call,
-- at its end (trim_events, from finish).
local function emit(kind, id, gid, now, k1, v1, k2, v2, k3, v3)
  if events_maxlen == 0 then return end
  events_written = true
  if not now_given and (gid == nil or gid == '') and k2 == nil then
    if k1 == nil then
      redis.call('XADD', K_EVENTS, '*', 'type', kind, 'id', id)
    else
      redis.call('XADD', K_EVENTS, '*', 'type', kind, 'id', id, k1, v1)
    end
    return
  end
  local args = {K_EVENTS, '*', 'type', kind, 'id', id}
  local n = 6
  if now_given then
    args[n + 1], args[n + 2] = 'ms', fmt(now)
    n = n + 2
  end
  if gid and gid ~= '' then
    args[n + 1], args[n + 2] = 'gid', gid
    n = n + 2
  end
  for _, v in ipairs({k1, v1, k2, v2, k3, v3}) do  -- up to the first pair not given
    n = n + 1
    args[n] = v
  end
  redis.call('XADD', unpack(args, 1, n))
end

-- Keep the stream near events_maxlen entries (MAXLEN ~ trims whole nodes only: cheap).
local function trim_events()
  if events_written then redis.call('XTRIM', K_EVENTS, 'MAXLEN', '~', events_maxlen) end
end


-- Job-control options of one published job (the extras field of enqueue): '' or a JSON
-- object. Returns a table of the options given, or nil and the name of the bad one.
-- Integers must be whole numbers 0..2^53-1 (cjson gives doubles and accepts nan/inf).
local EXTRA_INTS = {dedup_ttl_ms = true, expires_ms = true, expire_in_ms = true,
  run_timeout_ms = true, backoff_max_ms = true}
local EXTRA_CHOICES = {dedup = {keep = true, replace = true}, backoff = {fixed = true, exp = true},
  group_order = {fifo = true, strict = true}, on_failure = {release = true, block = true}}

-- A queue name inside a dependency ref (the rule of omniq/_keys.py).
local function valid_queue(q)
  return type(q) == 'string' and q ~= '' and #q <= MAX_NAME_LENGTH
    and not string.find(q, '[^%w._-]')
end

-- A dependency ref "<queue>:<id>" as the deps_* scripts take it.
local function valid_ref(ref)
  local c = string.find(ref, ':', 1, true)
  return c ~= nil and valid_queue(string.sub(ref, 1, c - 1)) and valid_id(string.sub(ref, c + 1))
end

-- The depends_on (kind 'd': [queue, id] or [queue, id, 1]) or dependents (kind 'p':
-- [queue, id, policy]) extra: a JSON array of at most MAX_DEPENDENCIES refs, each once.
local function valid_refs(v, kind)
  if type(v) ~= 'table' or #v > MAX_DEPENDENCIES or next(v) ~= nil and #v == 0 then
    return false
  end
  local seen = {}
  for k, r in pairs(v) do
    if type(k) ~= 'number' or type(r) ~= 'table' or not valid_queue(r[1])
        or type(r[2]) ~= 'string' or not valid_id(r[2]) then
      return false
    end
    local third = r[3]
    if kind == 'd' then
      if #r > 3 or (third ~= nil and third ~= 1) then return false end
    elseif #r ~= 3 or type(third) ~= 'string' or not DEP_POLICIES[third] then
      return false
    end
    local ref = r[1] .. ':' .. r[2]
    if seen[ref] then return false end
    seen[ref] = true
  end
  return true
end

local function parse_extras(text, gid, now)
  local ok, x = pcall(cjson.decode, text)
  if not ok or type(x) ~= 'table' then return nil, 'extras' end
  for k, v in pairs(x) do
    if k == 'depends_on' or k == 'dependents' then
      if not valid_refs(v, k == 'depends_on' and 'd' or 'p') then return nil, k end
    elseif k == 'dep_policy' then
      if type(v) ~= 'string' or not DEP_POLICIES[v] then return nil, k end
    elseif EXTRA_INTS[k] then
      if type(v) ~= 'number' or v ~= v or v < 0 or v > MAX_INT or v ~= math.floor(v) then
        return nil, k
      end
    elseif EXTRA_CHOICES[k] then
      if type(v) ~= 'string' or not EXTRA_CHOICES[k][v] then return nil, k end
    elseif k == 'dedup_key' then
      if type(v) ~= 'string' or not valid_id(v) then return nil, k end
    elseif k == 'backoff_jitter' then
      if type(v) ~= 'boolean' then return nil, k end
    else
      return nil, 'extras'
    end
  end
  if (x.dedup_ttl_ms or x.dedup) and not x.dedup_key then return nil, 'dedup_key' end
  if (x.expires_ms or 0) > 0 and (x.expire_in_ms or 0) > 0 then return nil, 'expires_ms' end
  if x.group_order == 'strict' and gid == '' then return nil, 'group_order' end
  if x.on_failure == 'block' and x.group_order ~= 'strict' then return nil, 'on_failure' end
  if x.dep_policy and not x.depends_on then return nil, 'dep_policy' end
  if x.depends_on and #x.depends_on == 0 then x.depends_on = nil end
  if x.dependents and #x.dependents == 0 then x.dependents = nil end
  if (x.expire_in_ms or 0) > 0 then x.expires_ms = now + x.expire_in_ms end
  return x, nil
end

-- Append the job hash fields of parsed extras (only those that differ from the default,
-- so a job without them is stored exactly as a v1 job).
local function extra_fields(fields, x)
  local function put(k, v)
    fields[#fields + 1] = k
    fields[#fields + 1] = v
  end
  if x.dedup_key then put('dedup_key', x.dedup_key) end
  if (x.dedup_ttl_ms or 0) > 0 then put('dedup_ttl_ms', fmt(x.dedup_ttl_ms)) end
  if (x.expires_ms or 0) > 0 then put('expires_ms', fmt(x.expires_ms)) end
  if (x.run_timeout_ms or 0) > 0 then put('run_timeout_ms', fmt(x.run_timeout_ms)) end
  if x.backoff == 'exp' then put('backoff', 'exp') end
  if (x.backoff_max_ms or 0) > 0 then put('backoff_max_ms', fmt(x.backoff_max_ms)) end
  if x.backoff_jitter then put('backoff_jitter', '1') end
  if x.group_order == 'strict' then put('group_order', 'strict') end
  if x.on_failure == 'block' then put('on_failure', 'block') end
end

-- Counters in B:stats are recomputed from the real containers (all O(1)), so they never
-- drift (fixes D7). Fields keep the official names and meaning.
local function sync_stats(now)
  local w = redis.call('LLEN', K_WAIT)
  local total = redis.call('ZCARD', K_IDX_WAIT)
  if total < w then total = w end
  local t = fmt(now)
  local args = {K_STATS,
    'waiting', w,
    'group_waiting', total - w,
    'waiting_total', total,
    'active', redis.call('ZCARD', K_ACTIVE),
    'delayed', redis.call('ZCARD', K_DELAYED),
    'failed', redis.call('LLEN', K_FAILED),
    'completed_kept', redis.call('LLEN', K_COMPLETED),
    'groups_ready', redis.call('ZCARD', K_READY),
    'last_activity_ms', t}
  for _, field in ipairs(stamps) do
    args[#args + 1] = field
    args[#args + 1] = t
  end
  redis.call('HSET', unpack(args))
end

local function finish(now)
  trim_events()
  sync_stats(now)
  if wake_needed then redis.call('PUBLISH', WAKE_CHANNEL, '1') end
end

local function group_limit(gid)
  local l = tonumber(redis.call('GET', gkey(gid, ':limit')) or '')
  if l == nil or l <= 0 then return 1 end
  return l
end

local function group_inflight(gid)
  return tonumber(redis.call('GET', gkey(gid, ':inflight')) or '') or 0
end

-- Put a group in groups:ready (keeping an older score) when it has work and capacity.
local function maybe_ready(gid, inflight, now)
  if inflight < group_limit(gid) and redis.call('LLEN', gkey(gid, ':wait')) > 0 then
    redis.call('ZADD', K_READY, 'NX', now, gid)
    wake_needed = true
  end
end

-- A group with nothing waiting and nothing leased keeps no keys: its limit is dropped
-- and set again by the next job that enters its wait list (D5).
local function forget_idle_group(gid)
  if group_inflight(gid) <= 0 and redis.call('LLEN', gkey(gid, ':wait')) == 0 then
    redis.call('DEL', gkey(gid, ':limit'))
  end
end

local function release_group(gid, now)
  local ik = gkey(gid, ':inflight')
  local n = redis.call('DECR', ik)
  if n <= 0 then
    redis.call('DEL', ik)
    n = 0
  end
  if redis.call('LLEN', gkey(gid, ':wait')) > 0 then
    if n < group_limit(gid) then
      redis.call('ZADD', K_READY, 'NX', now, gid)
      wake_needed = true
    end
  elseif n == 0 then
    redis.call('DEL', gkey(gid, ':limit'))
  end
end

-- Queue a job id at the tail of its lane (state "wait"). A grouped job brings its
-- group_limit: it becomes the group's limit unless the group already has one.
local function push_ready(id, gid, now, limit)
  redis.call('ZADD', K_IDX_WAIT, now, id)
  if gid and gid ~= '' then
    local gl = tonumber(limit or '')
    if gl and gl > 0 then redis.call('SET', gkey(gid, ':limit'), fmt(gl), 'NX') end
    redis.call('RPUSH', gkey(gid, ':wait'), id)
    maybe_ready(gid, group_inflight(gid), now)
  else
    redis.call('RPUSH', K_WAIT, id)
    wake_needed = true
  end
end

-- Keep a finished job for `ms` more: it is deleted by expire_finished once the time is
-- over. The job's expire_ms field must still match then, so an entry left behind never
-- deletes a later job that reused the id.
local function expire_later(id, jk, now, ms)
  local at = now + ms
  redis.call('HSET', jk, 'expire_ms', fmt(at))
  redis.call('ZADD', K_EXPIRE, at, id)
end

-- The job that holds dedup key `key` at `now`: one waiting, delayed or active, or one
-- that finished less than dedup_ttl_ms ago. Nil when the key is free or stale.
local function dedup_holder(key, now)
  local h = redis.call('HMGET', DEDUP_PREFIX .. key, 'id', 'until')
  if not h[1] then return nil end
  if h[2] then
    if (tonumber(h[2]) or 0) > now then return h[1] end
    return nil
  end
  local state = redis.call('HGET', job_key(h[1]), 'state')
  if state == 'wait' or state == 'delayed' or state == 'active' or state == 'waiting_deps' then
    return h[1]
  end
  return nil
end

-- Job `id` holds dedup key `key` from now on (a stale entry is replaced).
local function dedup_take(id, key)
  local k = DEDUP_PREFIX .. key
  redis.call('DEL', k)
  redis.call('HSET', k, 'id', id)
end

-- A job with dedup key `key` (may be nil) finished or left: when the key still names it,
-- the key is deleted, or kept `ttl` ms more.
local function dedup_release(id, key, ttl, now)
  if not key or key == '' then return end
  local k = DEDUP_PREFIX .. key
  if redis.call('HGET', k, 'id') ~= id then return end
  local ms = tonumber(ttl or '') or 0
  if ms > 0 then
    redis.call('HSET', k, 'until', fmt(now + ms))
    redis.call('PEXPIRE', k, ms)
  else
    redis.call('DEL', k)
  end
end

-- Validate the ENQUEUE_FIELDS fields of one job: t[o + 1] .. t[o + ENQUEUE_FIELDS] (an
-- enqueue call's ARGV, or a schedule's job template, schedule_fire.lua), job i of the
-- call. Returns {max_attempts, timeout_ms, backoff_ms (as stored), due, group_limit,
-- keep_completed_ms, keep_failed_ms, extras (a table, or false), false (a ninth slot for
-- the caller: filling it does not grow the table)}, or nil, code, detail.
local function parse_job(t, o, now, i)
  local id = t[o + 1]
  if not valid_id(id) then return nil, 'BAD_JOB_ID', tostring(i) end
  local payload = t[o + 2]
  local c = string.sub(payload, 1, 1)
  if c ~= '{' and c ~= '[' then return nil, 'BAD_PAYLOAD', id end
  local ma, tm, bo = int(t[o + 3]), int(t[o + 4]), int(t[o + 5])
  local due, delay, gl = int(t[o + 6]), int(t[o + 7]), int(t[o + 9])
  if ma == nil or ma < 1 then return nil, 'BAD_ARGS', 'max_attempts' end
  if tm == nil or tm < 1 then return nil, 'BAD_ARGS', 'timeout_ms' end
  if bo == nil or bo < 0 then return nil, 'BAD_ARGS', 'backoff_ms' end
  if due == nil or due < 0 then return nil, 'BAD_ARGS', 'due_ms' end
  if delay == nil or delay < 0 then return nil, 'BAD_ARGS', 'delay_ms' end
  if gl == nil or gl < 0 then return nil, 'BAD_ARGS', 'group_limit' end
  local kc, kf = int(t[o + 10]), int(t[o + 11])
  if kc == nil or kc < 0 then return nil, 'BAD_ARGS', 'keep_completed_ms' end
  if kf == nil or kf < 0 then return nil, 'BAD_ARGS', 'keep_failed_ms' end
  local gid = t[o + 8]
  if gid ~= '' and not valid_id(gid) then return nil, 'BAD_GID', id end
  local x = false
  if t[o + 12] ~= '' then
    local bad
    x, bad = parse_extras(t[o + 12], gid, now)
    if x == nil then return nil, 'BAD_ARGS', bad end
  end
  if delay > 0 then due = now + delay end
  return {canon(t[o + 3], ma), canon(t[o + 4], tm), canon(t[o + 5], bo), due, gl, kc, kf, x,
    false}
end

-- Write one job validated by parse_job (`job`) and put it in its lane: delayed when its
-- due time is later than now, else waiting (and a wake-up). `more`: extra hash fields
-- (field, value, ...) or nil. Emits 'delayed' or 'enqueued'; returns true when the job
-- is ready now. The caller sets K_HAS_GROUPS for a grouped job and calls finish. `sn` is
-- fmt(now) (made once per call: a batch writes up to 1,000 jobs).
local function write_job(id, gid, payload, job, now, sn, more)
  local due, gl = job[4], job[5]
  if job[8] and job[8].dedup_key then dedup_take(id, job[8].dedup_key) end
  local fields = {job_key(id), 'id', id, 'payload', payload, 'state', 'wait', 'attempt', '0',
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
  local x = job[8]
  if x then extra_fields(fields, x) end
  if more then
    for _, v in ipairs(more) do fields[#fields + 1] = v end
  end
  if x and x.dependents then
    -- a flow child: its parent (on another queue) is its dependent from the start
    local dargs = {job_key(id) .. ':dependents'}
    for _, r in ipairs(x.dependents) do
      dargs[#dargs + 1] = r[1] .. ':' .. r[2]
      dargs[#dargs + 1] = r[3]
    end
    redis.call('HSET', unpack(dargs))
    redis.call('ZADD', B .. DEPS_SRC, now + DEPS_REPAIR_MS, id)
    fields[#fields + 1] = 'dependents'
    fields[#fields + 1] = '1'
  end
  if x and x.depends_on then
    -- every dependency pending: the caller links them (link_deps), which may settle some
    fields[7] = 'waiting_deps'
    local refs = {}
    for i, r in ipairs(x.depends_on) do
      refs[i] = r[1] .. ':' .. r[2]
      fields[#fields + 1] = 'dep:' .. refs[i]
      fields[#fields + 1] = 'pending'
    end
    fields[#fields + 1] = 'depends_on'
    fields[#fields + 1] = cjson.encode(refs)
    fields[#fields + 1] = 'deps_left'
    fields[#fields + 1] = fmt(#refs)
    if x.dep_policy and x.dep_policy ~= 'fail' then
      fields[#fields + 1] = 'dep_policy'
      fields[#fields + 1] = x.dep_policy
    end
    if due > now then
      fields[#fields + 1] = 'due_ms'
      fields[#fields + 1] = fmt(due)
    end
    redis.call('HSET', unpack(fields))
    redis.call('ZADD', B .. WAITING_DEPS, now, id)
    emit('waiting_deps', id, gid, now)
    return false
  end
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
    return false
  end
  push_ready(id, gid, now, gl)
  emit('enqueued', id, gid, now)
  return true
end

-- A duplicate publish with dedup='replace' (docs/control.md "Deduplication"): the live
-- job `holder`, still waiting or delayed, takes the new payload; a delayed holder also the
-- new due time when that is later (debounce). True when it was replaced.
local function dedup_replace(holder, payload, due, now)
  local hk = job_key(holder)
  local h = redis.call('HMGET', hk, 'state', 'due_ms')
  if h[1] ~= 'wait' and h[1] ~= 'delayed' and h[1] ~= 'waiting_deps' then return false end
  redis.call('HSET', hk, 'payload', payload, 'updated_ms', fmt(now))
  if h[1] == 'delayed' and due > (tonumber(h[2] or '') or 0) then
    redis.call('HSET', hk, 'due_ms', fmt(due))
    redis.call('ZADD', K_DELAYED, due, holder)
  end
  return true
end

-- The id of the job of schedule `name` of this queue for its occurrence at `at` (epoch
-- ms): a ULID whose time is the occurrence and whose 80 random bits are the first 80 bits
-- of SHA1("<B>:<name>") (B: "{queue}"), so a replayed or raced fire can never publish one
-- occurrence twice, and schedules of the same name on two queues never share an id.
local function sched_job_id(name, at)
  local out = {}
  local t = at
  for i = 10, 1, -1 do
    local d = t % 32
    out[i] = string.sub(CROCKFORD, d + 1, d + 1)
    t = (t - d) / 32
  end
  local h = redis.sha1hex(B .. ':' .. name)
  for j = 0, 3 do
    local v = tonumber(string.sub(h, j * 5 + 1, j * 5 + 5), 16)  -- 20 bits: 4 characters
    for i = 4, 1, -1 do
      local d = v % 32
      out[10 + j * 4 + i] = string.sub(CROCKFORD, d + 1, d + 1)
      v = (v - d) / 32
    end
  end
  return table.concat(out)
end

-- How long after its occurrence `at` the job of schedule `name` is due: 0..jitter ms, by
-- a hash of both (every replay of a fire computes the same value).
local function sched_jitter(name, at, jitter)
  if jitter <= 0 then return 0 end
  local r = tonumber(string.sub(redis.sha1hex(name .. ':' .. fmt(at)), 1, 13), 16)
  return r % (jitter + 1)
end

-- The job of a schedule as parse_job's fields: id, then the template values `v` (the
-- payload .. extras of SCHED_DEF, from index `o` + 1 on), due_ms `due`, no delay.
local function sched_job_fields(id, v, o, due)
  return {id, v[o + 1], v[o + 2], v[o + 3], v[o + 4], fmt(due), '0', v[o + 5], v[o + 6],
    v[o + 7], v[o + 8], v[o + 9]}
end

-- A job ends failed for good: the failed lane, its keep_failed_ms, its dedup key and the
-- 'failed' event with `text`. The job has left its lane (and, unless it was active, its
-- lane index). keep_ms, dkey, dttl: its keep_failed_ms, dedup_key and dedup_ttl_ms fields.
local function to_failed_lane(id, jk, gid, now, attempt, text, keep_ms, dkey, dttl)
  redis.call('HSET', jk, 'state', 'failed', 'failed_ms', fmt(now), 'updated_ms', fmt(now),
    'lease_token', '', 'lock_until_ms', '')
  redis.call('LPUSH', K_FAILED, id)
  redis.call('ZADD', B .. IDX_FAILED, now, id)
  local ttl = tonumber(keep_ms or '') or 0
  if ttl > 0 then expire_later(id, jk, now, ttl) end
  dedup_release(id, dkey, dttl, now)
  emit('failed', id, gid, now, 'attempt', attempt, 'error', text)
  if redis.call('HGET', jk, 'dependents') then dep_push({id, 'failed', false}) end
end

-- A job that did not start (it was waiting or delayed, and has left its lane and lane
-- index) ends failed with error `reason` ('cancelled', 'expired').
local function fail_unstarted(id, jk, gid, now, reason, attempt, keep_ms, dkey, dttl)
  redis.call('HSET', jk, 'last_error', reason, 'last_error_ms', fmt(now))
  to_failed_lane(id, jk, gid, now, attempt or '0', reason, keep_ms, dkey, dttl)
end

-- A job met by reserve or promote_delayed after its expires_ms: it never runs (docs/
-- control.md "Expiry"). It has left its lane already; its lane index is `idx`. (The fields
-- only this rare path needs are read here, not by every lease.)
local function expire_job(id, jk, gid, now, idx, state, h_attempt)
  redis.call('ZREM', idx, id)
  local h = redis.call('HMGET', jk, 'keep_failed_ms', 'dedup_key', 'dedup_ttl_ms')
  fail_unstarted(id, jk, gid, now, 'expired', h_attempt, h[1], h[2], h[3])
  emit('expired', id, gid, now, 'state', state)
  if expired_n == 0 then stamps[#stamps + 1] = 'last_finish_ms' end
  expired_n = expired_n + 1
end

-- Lease one popped id. Returns the reply tuple, or nil when the id must be skipped:
-- its hash is gone (orphan, fixes D11) or it is not waiting (a stale duplicate entry).
local function lease(id, gid, now)
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'payload', 'attempt', 'max_attempts',
    'timeout_ms', 'first_started_ms', 'run_timeout_ms', 'expires_ms', 'schedule')
  if not h[1] then
    redis.call('ZREM', K_IDX_WAIT, id)
    return nil
  end
  if h[1] ~= 'wait' then return nil end
  if h[8] and (tonumber(h[8]) or 0) > 0 and tonumber(h[8]) <= now then
    expire_job(id, jk, gid, now, K_IDX_WAIT, 'wait', h[3])
    return nil
  end
  local timeout = tonumber(h[5]) or 0
  if timeout <= 0 then timeout = FALLBACK_LEASE_MS end
  local attempt = (tonumber(h[3]) or 0) + 1
  local lock = now + timeout
  local seq = redis.call('INCR', K_SEQ)
  local token = redis.sha1hex(id .. ':' .. fmt(now) .. ':' .. fmt(seq))
  local sn = fmt(now)
  if not h[6] or h[6] == '' then
    redis.call('HSET', jk, 'state', 'active', 'attempt', fmt(attempt), 'lock_until_ms',
      fmt(lock), 'lease_token', token, 'updated_ms', sn, 'last_started_ms', sn,
      'first_started_ms', sn)
  else
    redis.call('HSET', jk, 'state', 'active', 'attempt', fmt(attempt), 'lock_until_ms',
      fmt(lock), 'lease_token', token, 'updated_ms', sn, 'last_started_ms', sn)
  end
  redis.call('ZADD', K_ACTIVE, lock, id)
  redis.call('ZREM', K_IDX_WAIT, id)
  redis.call('ZADD', K_IDX_ACTIVE, now, id)
  if gid ~= '' then redis.call('HSET', K_LEASES, id, gid) end
  emit('reserved', id, gid, now, 'attempt', fmt(attempt))
  -- the RESERVE_FIELDS (10) values of one job in a reservation reply (a scheduled job's
  -- occurrence is the time of its id, a ULID: the client reads it there)
  return {id, h[2] or '', fmt(lock), fmt(attempt), h[4] or '', gid, token, fmt(timeout),
    h[7] or '0', h[9] or ''}
end

-- "max_jobs per_ms" of a stored rate limit, or nil.
local function rate_parse(v)
  if not v then return nil end
  local m, p = string.match(v, '^(%d+) (%d+)$')
  if not m then return nil end
  return tonumber(m), tonumber(p)
end

-- Slide a window log to `now` (its entries are the times of (now - per, now]): returns
-- how many it holds and 0 when one more fits under max, else in how many ms one will.
local function rate_window(log, max, per, now)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - per)
  local n = redis.call('ZCARD', log)
  if n < max then return n, 0 end
  local e = redis.call('ZRANGE', log, n - max, n - max, 'WITHSCORES')
  local wait = tonumber(e[2]) + per - now
  if wait < 1 then wait = 1 end
  return n, wait
end

-- Count reservations (their lease tokens) in a window log; it expires with its window.
local function rate_note(log, per, tokens, now)
  local args = {log}
  for _, t in ipairs(tokens) do
    args[#args + 1] = now
    args[#args + 1] = t
  end
  redis.call('ZADD', unpack(args))
  redis.call('PEXPIRE', log, per)
end

-- The start of a reservation when the queue has rate limits (one HMGET reads them).
-- Moves parked groups that are due back to groups:ready (those with work and room), and
-- returns how many jobs the queue-wide limit lets this call lease (count when there is
-- none) and, when that is 0, in how many ms its window allows one.
local function rate_begin(count, now)
  local h = redis.call('HMGET', K_RATE, 'queue', 'groups')
  if not h[1] and not h[2] then return count, 0 end
  rate.groups = (tonumber(h[2]) or 0) > 0
  if rate.groups then
    local due = redis.call('ZRANGEBYSCORE', K_LIMITED, '-inf', now, 'LIMIT', 0, MAX_UNPARK)
    if #due > 0 then
      redis.call('ZREM', K_LIMITED, unpack(due))
      for _, gid in ipairs(due) do maybe_ready(gid, group_inflight(gid), now) end
    end
  end
  local max, per = rate_parse(h[1])
  if not max then return count, 0 end
  rate.queue_per = per
  local n, wait = rate_window(K_RATE_LOG, max, per, now)
  if wait > 0 then return 0, wait end
  if max - n < count then return max - n, 0 end
  return count, 0
end

-- Whether a group's rate limit lets it lease a job now; when not, the group is parked in
-- groups:limited until its window allows one (it is out of groups:ready already).
local function group_rate_ok(gid, now)
  local c = rate.cache[gid]
  if c == nil then
    local max, per = rate_parse(redis.call('HGET', K_RATE, 'g:' .. gid))
    c = max and {max, per} or false
    rate.cache[gid] = c
  end
  if not c then return true end
  local _, wait = rate_window(gkey(gid, ':rate_log'), c[1], c[2], now)
  if wait == 0 then return true end
  redis.call('ZADD', K_LIMITED, now + wait, gid)
  return false
end

-- Count one lease of a group in its window (when the group has a limit).
local function group_rate_note(gid, token, now)
  local c = rate.cache[gid]
  if c then rate_note(gkey(gid, ':rate_log'), c[2], {token}, now) end
end

-- Take a parked group out of groups:limited (its limit changed): back in line when it
-- has work and capacity.
local function unpark_group(gid, now)
  if redis.call('ZREM', K_LIMITED, gid) == 1 then maybe_ready(gid, group_inflight(gid), now) end
end

local function pop_ungrouped(now)
  for _ = 1, MAX_ORPHAN_SKIPS do
    if expired_n >= MAX_EXPIRED_PER_CALL then return nil end
    local id = redis.call('LPOP', K_WAIT)
    if not id then return nil end
    local job = lease(id, '', now)
    if job then return job end
  end
  return nil
end

-- Next group in line: groups:ready first, then the groups this call already served.
local function next_group()
  local r = redis.call('ZPOPMIN', K_READY)
  if #r > 0 then return r[1] end
  if served_head > served_tail then return nil end
  local gid = served[served_head]
  served[served_head] = nil
  served_head = served_head + 1
  return gid
end

-- Put the groups served by this call back in line (keeping an older score).
local function requeue_served(now)
  for i = served_head, served_tail do
    redis.call('ZADD', K_READY, 'NX', now, served[i])
  end
  served_head, served_tail = 1, 0
end

-- Strict order within a group (group_order='strict', docs/control.md). Two omniq keys:
-- g:<gid>:held = the id of a strict job of the group waiting out the backoff of a failed
-- attempt; g:<gid>:blocked = the id of a strict job with on_failure='block' that failed
-- for good. While either names a job that is still in that state, reserve starts no job
-- of the group (the group is left out of groups:ready); whoever clears a hold puts the
-- group back in line. A hold whose job is gone or has moved on (an official client
-- promoted it, a retention trim deleted it) is stale: the first reserve that meets it
-- drops it.
local function group_held(gid, held, blocked)
  if held then
    local h = redis.call('HMGET', job_key(held), 'state', 'gid')
    if h[1] == 'delayed' and h[2] == gid then return true end
    redis.call('DEL', gkey(gid, ':held'))
  end
  if blocked then
    local h = redis.call('HMGET', job_key(blocked), 'state', 'gid')
    if h[1] == 'failed' and h[2] == gid then return true end
    redis.call('DEL', gkey(gid, ':blocked'))
  end
  return false
end

-- Drop the hold (suffix ':held' or ':blocked') of a group when `id` holds it; put the
-- group back in line when it can run. True when id held it.
local function release_hold(gid, suffix, id, now)
  local k = gkey(gid, suffix)
  if redis.call('GET', k) ~= id then return false end
  redis.call('DEL', k)
  maybe_ready(gid, group_inflight(gid), now)
  return true
end

-- Queue a strict job at the head of its group (its retry, or an admin retry of the job
-- that blocked the group): it runs before the jobs that came after it.
local function push_head(id, gid, now, limit)
  redis.call('ZADD', K_IDX_WAIT, now, id)
  local gl = tonumber(limit or '')
  if gl and gl > 0 then redis.call('SET', gkey(gid, ':limit'), fmt(gl), 'NX') end
  redis.call('LPUSH', gkey(gid, ':wait'), id)
end

-- A due delayed job enters its lane (promote_delayed). A strict job's retry (attempt > 0)
-- goes to the head of its group and ends the hold it had; anything else to the tail.
local function push_promoted(id, gid, now, limit, order, attempt)
  if order == 'strict' and gid ~= '' and (tonumber(attempt or '') or 0) > 0 then
    push_head(id, gid, now, limit)
    if not release_hold(gid, ':held', id, now) then maybe_ready(gid, group_inflight(gid), now) end
    return
  end
  push_ready(id, gid, now, limit)
end

local function pop_grouped(now)
  for _ = 1, MAX_GROUP_POPS + MAX_ORPHAN_SKIPS do
    if expired_n >= MAX_EXPIRED_PER_CALL then return nil end
    local gid = next_group()
    if not gid then return nil end
    -- one read for the slot count, the limit and the strict-order holds (an MGET of
    -- four keys costs what one GET does)
    local g = redis.call('MGET', gkey(gid, ':inflight'), gkey(gid, ':limit'),
      gkey(gid, ':held'), gkey(gid, ':blocked'))
    local inflight = tonumber(g[1] or '') or 0
    local limit = tonumber(g[2] or '')
    if limit == nil or limit <= 0 then limit = 1 end
    if (g[3] or g[4]) and group_held(gid, g[3], g[4]) then
      limit = 0  -- held by a strict job: no new start; left out of groups:ready
    end
    if inflight < limit and (not rate.groups or group_rate_ok(gid, now)) then
      local id = redis.call('LPOP', gkey(gid, ':wait'))
      if id then
        local job = lease(id, gid, now)
        if job then
          if rate.groups then group_rate_note(gid, job[7], now) end
          inflight = redis.call('INCR', gkey(gid, ':inflight'))
          if inflight < limit and redis.call('LLEN', gkey(gid, ':wait')) > 0 then
            served_tail = served_tail + 1
            served[served_tail] = gid
          end
          return job
        end
        -- skipped an orphan: keep the group in line if it still has work
        maybe_ready(gid, inflight, now)
      end
      forget_idle_group(gid)
    end
    -- at capacity: left out of groups:ready until a slot is released; rate-limited:
    -- parked in groups:limited
  end
  return nil
end

-- One reservation, alternating between the grouped and ungrouped lanes.
local function reserve_one(now)
  local grouped_first = redis.call('GET', K_RR) ~= '1'
  local job
  if grouped_first then
    job = pop_grouped(now)
    if not job then job = pop_ungrouped(now) end
  else
    job = pop_ungrouped(now)
    if not job then job = pop_grouped(now) end
  end
  if job then redis.call('SET', K_RR, grouped_first and '1' or '0') end
  return job
end

-- Reserve up to count jobs; appends the reply to out: PAUSED | EMPTY [MORE] | JOB n fields... |
-- LIMITED retry_after_ms scope (nothing leased because of rate limits: the queue-wide
-- one, scope 'queue', or parked groups, scope 'group', the earliest due in retry_after_ms).
local function reserve_into(out, count, now)
  -- one EXISTS for the pause flag and the rate limits: the paused key is named twice, so
  -- it counts 2 and the limits 1 (a queue without limits pays nothing more)
  local flags = redis.call('EXISTS', K_PAUSED, K_PAUSED, K_RATE)
  if flags >= 2 then
    out[#out + 1] = 'PAUSED'
    return 0
  end
  local wait = 0
  if flags == 1 then count, wait = rate_begin(count, now) end
  if wait > 0 then
    out[#out + 1] = 'LIMITED'
    out[#out + 1] = fmt(wait)
    out[#out + 1] = 'queue'
    return 0
  end
  local jobs = {}
  for _ = 1, count do
    local job = reserve_one(now)
    if not job then break end
    jobs[#jobs + 1] = job
  end
  requeue_served(now)
  if rate.queue_per and #jobs > 0 then
    local tokens = {}
    for i, job in ipairs(jobs) do tokens[i] = job[7] end
    rate_note(K_RATE_LOG, rate.queue_per, tokens, now)
  end
  if #jobs == 0 then
    local first = rate.groups and redis.call('ZRANGE', K_LIMITED, 0, 0, 'WITHSCORES') or {}
    if #first > 0 then
      out[#out + 1] = 'LIMITED'
      out[#out + 1] = fmt(math.max(tonumber(first[2]) - now, 1))
      out[#out + 1] = 'group'
      return 0
    end
    out[#out + 1] = 'EMPTY'
    if expired_n >= MAX_EXPIRED_PER_CALL then
      -- the expiry budget ran out before a job was found: more may wait behind the
      -- expired ones, so the caller (and, by the wake-up, every worker) looks again
      out[#out + 1] = 'MORE'
      wake_needed = true
    end
    return 0
  end
  out[#out + 1] = 'JOB'
  out[#out + 1] = fmt(#jobs)
  for _, job in ipairs(jobs) do
    for _, v in ipairs(job) do out[#out + 1] = v end
  end
  stamps[#stamps + 1] = 'last_reserve_ms'
  return #jobs
end

-- Token gate shared by heartbeat and acks. Returns nil when the lease is held.
local function check_lease(id, token)
  if token == nil or token == '' then return 'TOKEN_REQUIRED' end
  if redis.call('HGET', job_key(id), 'lease_token') ~= token then return 'TOKEN_MISMATCH' end
  if not redis.call('ZSCORE', K_ACTIVE, id) then return 'NOT_ACTIVE' end
  return nil
end

-- The same gate for the acks, which end the lease: it also takes the job out of the active
-- zset and returns the job's gid, attempt, keep_completed_ms and dedup_key (one read for
-- all; dedup_ttl_ms is read only for a job with a key).
local function take_lease(id, token)
  if token == nil or token == '' then return 'TOKEN_REQUIRED' end
  local h = redis.call('HMGET', job_key(id), 'lease_token', 'gid', 'attempt',
    'keep_completed_ms', 'dedup_key', 'dependents')
  if h[1] ~= token then return 'TOKEN_MISMATCH' end
  if redis.call('ZREM', K_ACTIVE, id) == 0 then return 'NOT_ACTIVE' end
  return nil, h[2] or '', h[3] or '0', tonumber(h[4]) or 0, h[5], h[6]
end

-- End a lease whose job hash exists (an ack): forget the lease map entry, free the slot.
-- Only grouped leases are in the map (see lease()).
local function end_acked_lease(id, gid, now)
  if gid ~= '' then
    redis.call('HDEL', K_LEASES, id)
    release_group(gid, now)
  end
end

-- Release the group slot of a lease that is ending. gid comes from the hash, else, only
-- when the hash has vanished (D4), from the omniq lease map: an entry can be stale (an
-- official consumer reaped our lease), so it never overrides an existing ungrouped hash.
local function end_lease(id, gid, now)
  local mapped = redis.call('HGET', K_LEASES, id)
  if mapped then redis.call('HDEL', K_LEASES, id) end
  if (not gid or gid == '') and mapped and redis.call('EXISTS', job_key(id)) == 0 then
    gid = mapped
  end
  if gid and gid ~= '' then release_group(gid, now) end
end

-- Cut text to at most MAX_ERROR_BYTES without splitting a UTF-8 character (fixes D8).
local function cut_utf8(s)
  if #s <= MAX_ERROR_BYTES then return s end
  local i = MAX_ERROR_BYTES
  local b = string.byte(s, i + 1)
  while i > 0 and b ~= nil and b >= 128 and b < 192 do
    b = string.byte(s, i)
    i = i - 1
  end
  return string.sub(s, 1, i)
end

-- Keep only the newest `keep` of the n ids of a finished list (completed or failed), at
-- most `budget` trimmed: the oldest leave the list and its index, and their hashes are
-- deleted only if still in `state` (never the hash of a reused id alive again, D9).
-- (now: given for the failed lane, where a deleted job may free the strict group it blocked)
local function trim_finished(list_key, idx_key, state, n, keep, budget, now)
  while n > keep and budget > 0 do
    local old = redis.call('RPOP', list_key)
    n = n - 1
    budget = budget - 1
    redis.call('ZREM', idx_key, old)
    -- (only a failed job can hold its group: on_failure='block')
    -- (a completed job's dependents were settled by its ack; one an official client
    -- acked is settled by the repair scan, which finds its record gone)
    local h = state == 'failed'
      and redis.call('HMGET', job_key(old), 'state', 'dependents', 'gid', 'on_failure')
      or {redis.call('HGET', job_key(old), 'state')}
    if h[1] == state then
      if h[2] then settle_deleted(old, job_key(old), state) end
      redis.call('DEL', job_key(old))
      redis.call('ZREM', K_EXPIRE, old)
      if h[4] == 'block' and h[3] and now then release_hold(h[3], ':blocked', old, now) end
    end
  end
end

-- Delete up to MAX_EXPIRE_TRIM finished jobs whose keep_*_ms time is over (called by the
-- scripts that finish jobs and by promote_delayed, so no sweeper process is needed).
-- Returns how many were deleted.
local function expire_finished(now)
  local due = redis.call('ZRANGEBYSCORE', K_EXPIRE, '-inf', now, 'WITHSCORES', 'LIMIT', 0,
    MAX_EXPIRE_TRIM)
  local deleted = 0
  for i = 1, #due, 2 do
    local id = due[i]
    redis.call('ZREM', K_EXPIRE, id)
    local jk = job_key(id)
    local h = redis.call('HMGET', jk, 'state', 'expire_ms', 'gid', 'on_failure', 'dependents')
    if tonumber(h[2] or '') == tonumber(due[i + 1]) then
      if h[5] and (h[1] == 'completed' or h[1] == 'failed') then settle_deleted(id, jk, h[1]) end
      if h[1] == 'completed' then
        redis.call('LREM', K_COMPLETED, -1, id)  -- the oldest are at the tail
        redis.call('ZREM', K_IDX_COMPLETED, id)
        redis.call('DEL', jk)
        deleted = deleted + 1
      elseif h[1] == 'failed' then
        redis.call('LREM', K_FAILED, -1, id)
        redis.call('ZREM', B .. IDX_FAILED, id)
        redis.call('DEL', jk)
        if h[4] == 'block' and h[3] then release_hold(h[3], ':blocked', id, now) end
        deleted = deleted + 1
      end
    end
  end
  return deleted
end

local function ack_success_one(id, token, now, result, keep)
  local code, gid, attempt, ttl, dkey, deps = take_lease(id, token)
  if code then return code end
  if deps then dep_push({id, 'completed', result or ''}) end
  local jk = job_key(id)
  if dkey then dedup_release(id, dkey, redis.call('HGET', jk, 'dedup_ttl_ms'), now) end
  redis.call('HSET', jk, 'state', 'completed', 'completed_ms', fmt(now), 'updated_ms', fmt(now),
    'lease_token', '', 'lock_until_ms', '')
  if result ~= nil and result ~= '' then redis.call('HSET', jk, 'result', result) end
  redis.call('ZREM', K_IDX_ACTIVE, id)
  redis.call('ZADD', K_IDX_COMPLETED, now, id)
  end_acked_lease(id, gid, now)
  if ttl > 0 then expire_later(id, jk, now, ttl) end
  emit('completed', id, gid, now, 'attempt', attempt)
  local n = redis.call('LPUSH', K_COMPLETED, id)
  if n > keep then trim_finished(K_COMPLETED, K_IDX_COMPLETED, 'completed', n, keep, n) end
  return nil
end

-- keep_failed argument: '' or missing = keep every failed job (-1), else an integer >= 0;
-- nil when malformed.
local function keep_failed_arg(v)
  if v == nil or v == '' then return -1 end
  local n = int(v)
  if n == nil or n < 0 then return nil end
  return n
end

-- Keep only the newest `keep` failed jobs (at most MAX_FAILED_TRIM trimmed per call).
local function trim_failed(keep, now)
  trim_finished(K_FAILED, B .. IDX_FAILED, 'failed', redis.call('LLEN', K_FAILED), keep,
    MAX_FAILED_TRIM, now)
end

-- A job whose cancel was requested fails for good with error 'cancelled' (recorded as its
-- last_error unless the worker already sent that text), whatever the ack or reap said.
local function cancelled_error(jk, now, text)
  if text ~= 'cancelled' then
    redis.call('HSET', jk, 'last_error', 'cancelled', 'last_error_ms', fmt(now))
  end
  return 'cancelled'
end

-- Shared by ack_fail and reap: retry with backoff or fail for good (final = no retry).
-- keep_failed < 0 keeps every failed job; text is the error the events carry.
-- The delay before retry `attempt` (docs/control.md "Backoff strategies"): backoff_ms
-- ('fixed'), or backoff_ms * 2^(attempt-1) ('exp', the exponent capped at 53 so the
-- product stays finite); backoff_max_ms (> 0) caps either; with jitter the delay is drawn
-- from [d - floor(d/2), d] ("equal" jitter) by a hash of id, attempt and now, so every
-- replica and replay computes the same value. At most MAX_INT.
local function backoff_delay(id, attempt, now, base, kind, cap, jitter)
  local d = base
  if kind == 'exp' and d > 0 then
    local e = attempt - 1
    if e < 0 then e = 0 end
    if e > 53 then e = 53 end
    d = d * 2 ^ e
  end
  if cap > 0 and d > cap then d = cap end
  if d > MAX_INT then d = MAX_INT end
  if jitter and d > 1 then
    local half = math.floor(d / 2)
    local r = tonumber(string.sub(redis.sha1hex(id .. ':' .. fmt(attempt) .. ':' .. fmt(now)),
      1, 13), 16) / 4503599627370496  -- 52 bits: r in [0, 1)
    local j = math.floor(r * (half + 1))
    if j > half then j = half end
    d = d - half + j
  end
  return d
end

local function fail_or_retry(id, jk, now, final, keep_failed, text)
  local h = redis.call('HMGET', jk, 'attempt', 'max_attempts', 'backoff_ms', 'gid',
    'keep_failed_ms', 'backoff', 'backoff_max_ms', 'backoff_jitter', 'group_order',
    'on_failure', 'cancel_requested_ms', 'dedup_key', 'dedup_ttl_ms')
  if h[11] then final, text = true, cancelled_error(jk, now, text) end  -- cancel requested
  local attempt = tonumber(h[1]) or 0
  local max_attempts = tonumber(h[2]) or 1
  if max_attempts < 1 then max_attempts = 1 end
  redis.call('ZREM', K_IDX_ACTIVE, id)
  if final or attempt >= max_attempts then
    to_failed_lane(id, jk, h[4], now, fmt(attempt), text, h[5], h[12], h[13])
    if h[10] == 'block' and not h[11] and h[4] and h[4] ~= '' then
      -- a strict group with on_failure='block' stays held until an admin retries or
      -- removes this job (set before the trim: a trim of this very job drops it again);
      -- a cancel is that admin's decision already, so a cancelled job never blocks
      redis.call('SET', gkey(h[4], ':blocked'), id)
      redis.call('ZREM', K_READY, h[4])
    end
    if keep_failed >= 0 then trim_failed(keep_failed, now) end
    return 'FAILED', ''
  end
  local backoff = tonumber(h[3]) or 0
  if backoff < 0 then backoff = 0 end
  if h[6] or h[7] or h[8] then
    backoff = backoff_delay(id, attempt, now, backoff, h[6], tonumber(h[7] or '') or 0,
      h[8] == '1')
  end
  local due = now + backoff
  if due > MAX_INT then due = MAX_INT end
  if h[9] == 'strict' and h[4] and h[4] ~= '' then
    -- the failed attempt keeps the head of its group: nothing else of the group starts
    -- before this retry (promote puts it back at the head and ends the hold)
    redis.call('SET', gkey(h[4], ':held'), id, 'NX')
    redis.call('ZREM', K_READY, h[4])
  end
  redis.call('HSET', jk, 'state', 'delayed', 'due_ms', fmt(due), 'updated_ms', fmt(now),
    'lease_token', '', 'lock_until_ms', '')
  redis.call('ZADD', K_DELAYED, due, id)
  redis.call('ZADD', K_IDX_DELAYED, now, id)
  emit('retry_scheduled', id, h[4], now, 'attempt', fmt(attempt), 'due', fmt(due),
    'error', text)
  return 'RETRY', fmt(due)
end

local function ack_fail_one(id, token, now, text, final, keep_failed)
  local code, gid = take_lease(id, token)
  if code then return 'ERR', code end
  local jk = job_key(id)
  text = cut_utf8(text or '')
  if text ~= '' then
    redis.call('HSET', jk, 'last_error', text, 'last_error_ms', fmt(now))
  end
  end_acked_lease(id, gid, now)
  return fail_or_retry(id, jk, now, final, keep_failed, text)
end

local function retry_failed_one(id, now)
  if not valid_id(id) then return 'BAD_JOB_ID' end
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'gid', 'group_limit', 'group_order', 'dedup_key',
    'dependents')
  if not h[1] then return 'NO_JOB' end
  if h[1] ~= 'failed' then return 'NOT_FAILED' end
  -- dependents waiting for this retry: the repair scan looks at the job at its usual pace
  -- again (in case another client's worker completes it)
  if h[6] then redis.call('ZADD', B .. DEPS_SRC, now + DEPS_REPAIR_MS, id) end
  if h[5] then
    -- the retried job holds its dedup key again, unless another live job took it over
    local holder = dedup_holder(h[5], now)
    if holder == nil or holder == id then dedup_take(id, h[5]) end
  end
  redis.call('LREM', K_FAILED, 1, id)
  redis.call('ZREM', B .. IDX_FAILED, id)
  redis.call('ZREM', K_DELAYED, id)
  redis.call('ZREM', K_IDX_DELAYED, id)
  redis.call('ZREM', K_EXPIRE, id)
  redis.call('HSET', jk, 'state', 'wait', 'attempt', '0', 'lease_token', '', 'lock_until_ms', '',
    'due_ms', '', 'failed_ms', '', 'expire_ms', '', 'updated_ms', fmt(now))
  redis.call('HDEL', jk, 'cancel_requested_ms')  -- a retried job runs again in full
  local gid = h[2] or ''
  if h[4] == 'strict' and gid ~= '' and redis.call('GET', gkey(gid, ':blocked')) == id then
    -- the job that blocked its group runs again first
    push_head(id, gid, now, h[3])
    release_hold(gid, ':blocked', id, now)
  else
    push_ready(id, gid, now, h[3])
  end
  emit('retried', id, h[2], now)
  return nil
end

local LANE_STATE = {wait = 'wait', gwait = 'wait', delayed = 'delayed', failed = 'failed',
  completed = 'completed', waiting_deps = 'waiting_deps'}

-- Remove one job from a lane. Checks first, writes after: a refusal changes nothing (D17).
local function remove_one(id, lane, now)
  if not valid_id(id) then return 'BAD_JOB_ID' end
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'gid', 'group_order', 'dedup_key', 'dependents')
  if not h[1] then return 'NO_JOB' end
  if redis.call('ZSCORE', K_ACTIVE, id) then return 'ACTIVE' end
  local want = LANE_STATE[lane]
  local gid = h[2] or ''
  if want == nil or h[1] ~= want or (lane == 'gwait' and gid == '') then
    return 'LANE_MISMATCH'
  end
  local removed
  if lane == 'wait' then
    if gid ~= '' then return 'NOT_IN_LANE' end
    removed = redis.call('LREM', K_WAIT, 1, id)
  elseif lane == 'gwait' then
    removed = redis.call('LREM', gkey(gid, ':wait'), 1, id)
    if removed > 0 and redis.call('LLEN', gkey(gid, ':wait')) == 0 then
      redis.call('ZREM', K_READY, gid)
    end
  elseif lane == 'delayed' then
    removed = redis.call('ZREM', K_DELAYED, id)
  elseif lane == 'failed' then
    removed = redis.call('LREM', K_FAILED, 1, id)
  elseif lane == 'waiting_deps' then
    removed = redis.call('ZREM', B .. WAITING_DEPS, id)
  else
    removed = redis.call('LREM', K_COMPLETED, 1, id)
  end
  if removed == 0 then return 'NOT_IN_LANE' end
  if h[5] then settle_deleted(id, jk, h[1]) end
  redis.call('DEL', jk)
  dedup_release(id, h[4], 0, now)  -- a removed job frees its dedup key at once
  if lane == 'failed' or lane == 'completed' then redis.call('ZREM', K_EXPIRE, id) end
  local idx = {wait = K_IDX_WAIT, gwait = K_IDX_WAIT, delayed = K_IDX_DELAYED,
    failed = B .. IDX_FAILED, completed = K_IDX_COMPLETED, waiting_deps = B .. WAITING_DEPS}
  redis.call('ZREM', idx[lane], id)
  if lane == 'gwait' then forget_idle_group(gid) end
  if h[3] == 'strict' and gid ~= '' then
    -- a strict job waiting out its backoff, or blocking its group, frees the group
    if lane == 'delayed' then release_hold(gid, ':held', id, now)
    elseif lane == 'failed' then release_hold(gid, ':blocked', id, now) end
  end
  emit('removed', id, gid, now, 'lane', lane)
  return nil
end


-- Cancel one job (cancel.lua). A waiting (ungrouped or grouped) or delayed job leaves its
-- lane and ends failed with error 'cancelled'; an active job gets cancel_requested_ms
-- (its heartbeats answer CANCEL, its next fail ack or reap is final) and its worker is told
-- on the wake channel. Returns the result (cancelled | cancelling | finished | not_found)
-- and the state the job was in.
local function cancel_one(id, now, keep_failed)
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'gid', 'cancel_requested_ms', 'attempt',
    'keep_failed_ms', 'dedup_key', 'dedup_ttl_ms')
  local state = h[1]
  if not state then return 'not_found', '' end
  if state == 'completed' or state == 'failed' then return 'finished', state end
  local gid = h[2] or ''
  if state == 'active' then
    if not h[3] then
      redis.call('HSET', jk, 'cancel_requested_ms', fmt(now), 'updated_ms', fmt(now))
      emit('cancelled', id, gid, now, 'state', 'active')
    end
    redis.call('PUBLISH', WAKE_CHANNEL, 'cancel:' .. id)
    return 'cancelling', state
  end
  if state == 'wait' then
    redis.call('ZREM', K_IDX_WAIT, id)
    if gid ~= '' then
      local wk = gkey(gid, ':wait')
      redis.call('LREM', wk, 1, id)
      if redis.call('LLEN', wk) == 0 then redis.call('ZREM', K_READY, gid) end
      forget_idle_group(gid)
    else
      redis.call('LREM', K_WAIT, 1, id)
    end
  elseif state == 'delayed' then
    redis.call('ZREM', K_DELAYED, id)
    redis.call('ZREM', K_IDX_DELAYED, id)
    -- a strict job waiting out its backoff holds its group: the cancel frees it
    if gid ~= '' then release_hold(gid, ':held', id, now) end
  elseif state == 'waiting_deps' then
    redis.call('ZREM', B .. WAITING_DEPS, id)
  else
    return 'finished', state  -- a state this client does not know: leave it alone
  end
  fail_unstarted(id, jk, gid, now, 'cancelled', h[4], h[5], h[6], h[7])
  emit('cancelled', id, gid, now, 'state', state)
  if keep_failed >= 0 then trim_failed(keep_failed, now) end
  return 'cancelled', state
end
-- Dependencies and flows (docs/workflows.md, protocol.md 2.11) -------------------------

-- Put op `op` for another queue in this queue's outbox, due now (see B .. DEPS_OUT); the
-- first write of an op keeps its creation time and `result`.
local function deps_out(op, result, now)
  redis.call('ZADD', B .. DEPS_OUT, now, op)
  redis.call('HSETNX', B .. DEPS_OUTDATA, op, fmt(now) .. '\t' .. (result or ''))
  deps_out_n = deps_out_n + 1
end

-- Job `bid` of this queue gets dependent `ref` ("<queue>:<id>") with policy `policy`.
-- `failed`: the job has failed already (only a retry can end it now: the repair scan
-- looks at it rarely, as settle_dependents has it for a failed job it keeps).
local function dep_register(bid, ref, policy, now, failed)
  local bk = job_key(bid)
  redis.call('HSET', bk .. ':dependents', ref, policy)
  redis.call('HSET', bk, 'dependents', '1')
  redis.call('ZADD', B .. DEPS_SRC, 'NX', now + (failed and DEPS_REPAIR_MS * 10 or DEPS_REPAIR_MS),
    bid)
end

-- Every dependency of job `id` (waiting_deps) is resolved: it enters its lane (delayed
-- while its own due time is later).
local function deps_ready(id, jk, gid, now)
  redis.call('ZREM', B .. WAITING_DEPS, id)
  local h = redis.call('HMGET', jk, 'due_ms', 'group_limit')
  local due = tonumber(h[1] or '') or 0
  local sn = fmt(now)
  if due > now then
    redis.call('HSET', jk, 'state', 'delayed', 'updated_ms', sn)
    redis.call('ZADD', K_DELAYED, due, id)
    redis.call('ZADD', K_IDX_DELAYED, now, id)
    emit('delayed', id, gid, now, 'due', fmt(due))
  else
    redis.call('HSET', jk, 'state', 'wait', 'updated_ms', sn, 'queued_ms', sn)
    push_ready(id, gid, now, h[2])
    emit('enqueued', id, gid, now)
  end
end

-- Dependency `ref` of job `id` of this queue ended with `outcome` ('completed' with its
-- `result`, 'failed' or 'gone'): record it and apply the job's dep_policy (the table in
-- docs/workflows.md). Idempotent: field dep:<ref> says whether the outcome counted
-- already. A job not waiting_deps (cancelled, removed, retried) is left alone. Returns
-- 'NO_JOB' when the job does not exist, else 'OK'.
local function dep_settle(id, ref, outcome, result, now)
  local jk = job_key(id)
  local f = 'dep:' .. ref
  local h = redis.call('HMGET', jk, 'state', f, 'dep_policy', 'gid')
  if not h[1] then return 'NO_JOB' end
  local cur = h[2]
  if h[1] ~= 'waiting_deps' or (cur ~= 'pending' and cur ~= 'failed') then return 'OK' end
  local policy = h[3] or 'fail'
  local gid = h[4] or ''
  if outcome == 'completed' or policy == 'ignore' then
    if outcome ~= 'completed' then
      redis.call('HSET', jk, f, 'ignored')
    elseif result and result ~= '' then
      redis.call('HSET', jk, f, 'completed', 'dres:' .. ref, result)
    else
      redis.call('HSET', jk, f, 'completed')
    end
    if redis.call('HINCRBY', jk, 'deps_left', -1) <= 0 then deps_ready(id, jk, gid, now) end
  elseif policy == 'wait' and outcome == 'failed' then
    if cur ~= 'failed' then
      redis.call('HSET', jk, f, 'failed', 'updated_ms', fmt(now))
      emit('dependency_failed', id, gid, now, 'dependency', ref)
    end
  else
    redis.call('HSET', jk, f, outcome)
    redis.call('ZREM', B .. WAITING_DEPS, id)
    local x = redis.call('HMGET', jk, 'attempt', 'keep_failed_ms', 'dedup_key', 'dedup_ttl_ms')
    local why = outcome == 'gone' and 'dependency removed: ' or 'dependency failed: '
    fail_unstarted(id, jk, gid, now, why .. ref, x[1], x[2], x[3], x[4])
  end
  return 'OK'
end

-- Settle the dependents of the jobs in dep_work, until none is left (a dependent that
-- fails adds its own): those of this queue at once, the others through the outbox ('R'
-- ops). A failed job keeps its dependents with policy 'wait' (they wait for its retry).
local function settle_dependents(now)
  if not dep_work then return end
  local me = string.sub(B, 2, -2)  -- this queue's name
  local i = 1
  while dep_work[i] do
    local id, outcome, result = dep_work[i][1], dep_work[i][2], dep_work[i][3]
    i = i + 1
    local dk = job_key(id) .. ':dependents'
    local all = redis.call('HGETALL', dk)
    local kept = 0
    for j = 1, #all, 2 do
      local ref = all[j]
      local c = string.find(ref, ':', 1, true)
      if outcome == 'failed' and all[j + 1] == 'wait' then
        kept = kept + 1
      elseif outcome == 'failed' then
        redis.call('HDEL', dk, ref)
      end
      if c then
        local q, did = string.sub(ref, 1, c - 1), string.sub(ref, c + 1)
        if q == me then
          dep_settle(did, me .. ':' .. id, outcome, result, now)
        else
          deps_out('R\t' .. outcome .. '\t' .. id .. '\t' .. q .. '\t' .. did, result, now)
        end
      end
    end
    if kept == 0 then
      redis.call('DEL', dk)
      redis.call('HDEL', job_key(id), 'dependents')
      redis.call('ZREM', B .. DEPS_SRC, id)
    else
      -- failed, with dependents waiting for its retry: our retry_failed looks again at
      -- once (it re-arms the scan), the scan itself rarely (another client's retry)
      redis.call('ZADD', B .. DEPS_SRC, now + DEPS_REPAIR_MS * 10, id)
    end
  end
  dep_work = false
end

-- Link job `id` of this queue, just written waiting_deps, to its dependencies `deps`
-- ([queue, id, linked]) with policy `policy`: one of this queue is looked at now (an
-- ended one settles at once, else it gets `id` as a dependent); one of another queue gets
-- an 'L' op, unless `linked` (a flow child registered `id` as its dependent itself).
local function link_deps(id, deps, policy, now)
  local qname = string.sub(B, 2, -2)
  local me = qname .. ':' .. id
  for _, r in ipairs(deps) do
    if r[1] == qname then
      local bid = r[2]
      local ref = qname .. ':' .. bid
      local h = redis.call('HMGET', job_key(bid), 'state', 'result')
      if h[1] == 'completed' then
        dep_settle(id, ref, 'completed', h[2], now)
      elseif not h[1] then
        dep_settle(id, ref, 'gone', nil, now)
      else
        if h[1] ~= 'failed' or policy == 'wait' then
          dep_register(bid, me, policy, now, h[1] == 'failed')
        end
        if h[1] == 'failed' then dep_settle(id, ref, 'failed', nil, now) end
      end
    elseif r[3] ~= 1 then
      deps_out('L\t' .. policy .. '\t' .. id .. '\t' .. r[1] .. '\t' .. r[2], nil, now)
    end
  end
end

-- The repair scan: up to MAX_DEPS_REPAIR jobs with dependents that are due for a look.
-- One that has ended (an official client acked it, whose scripts know nothing of
-- dependents) gets its dependents settled; the others are looked at again in
-- DEPS_REPAIR_MS. A record that vanished counts as completed, without a result: every
-- path of ours that deletes a job with dependents settles them itself, so the record was
-- deleted by another client, and the official clients delete a job's record when their
-- acks trim the completed list (an official remove_job cannot be told apart).
local function deps_repair(now)
  local ids = redis.call('ZRANGEBYSCORE', B .. DEPS_SRC, '-inf', now, 'LIMIT', 0, MAX_DEPS_REPAIR)
  for _, id in ipairs(ids) do
    local h = redis.call('HMGET', job_key(id), 'state', 'result')
    if h[1] == 'completed' then
      dep_push({id, 'completed', h[2] or ''})
    elseif h[1] == 'failed' then
      dep_push({id, 'failed', false})
    elseif not h[1] then
      dep_push({id, 'completed', ''})
    else
      redis.call('ZADD', B .. DEPS_SRC, now + DEPS_REPAIR_MS, id)
    end
  end
  settle_dependents(now)
  return #ids
end
