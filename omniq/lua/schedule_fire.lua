-- schedule_fire: publish the due occurrences of schedules, each exactly once
-- (docs/schedules.md). The client read the schedules (schedule_read 'due') and computed,
-- from each one's definition, which occurrences its misfire policy publishes now; this
-- script checks that plan against what is stored and applies it, or refuses it when the
-- schedule changed since the read (another worker fired it, it was replaced, paused or
-- removed). The compare-and-set on (rev, next_ms) is what makes a fire happen once however
-- many workers race for it.
-- ARGV: now_ms, events_maxlen, n, then per schedule:
--   name, rev, expected_next (the next_ms the client read), new_next ('' = no occurrence
--   left), skip_from, skip_to (the occurrences the policy drops, '' '' for none), m, then
--   m occurrence times (ascending)
-- Checks (BAD_ARGS, nothing written): a name at most once; every time an integer;
-- occurrences and the skipped range within [expected_next, now], the skipped ones before
-- the published ones, new_next after all of them; at most MAX_SCHEDULE_CATCHUP
-- occurrences; and, for a plan that matches the stored schedule: none after its end_ms
-- (new_next included), at most 1 occurrence unless its misfire is 'all'.
-- Each occurrence becomes a job of the schedule's template with the id sched_job_id(name,
-- time) (lib.lua), due at time + its jitter, and the fields schedule, occurrence_ms; an id that
-- exists already is not written again. Events: 'fired' per occurrence published (fields
-- schedule, occurrence; then the job's own 'enqueued' or 'delayed'), 'misfired' for a
-- skipped range (schedule, from: its first occurrence, occurrence: its last). A plan may
-- publish nothing and skip nothing (m = 0, no range: the stored time is not an occurrence
-- of the definition): the schedule only moves on to new_next.
-- Reply: {'OK', then per schedule: status, published}, status FIRED | STALE (rev or
--   next_ms differ) | PAUSED | GONE (no such schedule)
-- | {'ERR', 'BAD_ARGS', detail} | {'ERR', 'PARTITIONED'}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
events_maxlen = events_arg(ARGV[2])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local n = int(ARGV[3])
if n == nil or n < 1 or n > MAX_SCHEDULES_DUE then return err('BAD_ARGS', 'count') end
if redis.call('EXISTS', B .. ':partitions') == 1 then return err('PARTITIONED') end

-- A time argument: an integer >= 0, or nil.
local function time_arg(v)
  local t = int(v)
  if t == nil or t < 0 then return nil end
  return t
end

-- read and check every plan before the first write
local plans = {}
local named = {}
local i = 4
for k = 1, n do
  local name = ARGV[i]
  if not valid_id(name) then return err('BAD_ARGS', 'name') end
  if named[name] then return err('BAD_ARGS', 'name twice') end
  named[name] = true
  local p = {name = name, status = nil, times = {}}
  local rev, expected = int(ARGV[i + 1]), time_arg(ARGV[i + 2])
  if rev == nil or expected == nil then return err('BAD_ARGS', 'rev or expected_next') end
  local new_next = nil
  if ARGV[i + 3] ~= '' then
    new_next = time_arg(ARGV[i + 3])
    if new_next == nil then return err('BAD_ARGS', 'new_next') end
  end
  local skip_from, skip_to = nil, nil
  if ARGV[i + 4] ~= '' or ARGV[i + 5] ~= '' then
    skip_from, skip_to = time_arg(ARGV[i + 4]), time_arg(ARGV[i + 5])
    if skip_from == nil or skip_to == nil or skip_from > skip_to then
      return err('BAD_ARGS', 'skipped range')
    end
  end
  local m = int(ARGV[i + 6])
  if m == nil or m < 0 or m > MAX_SCHEDULE_CATCHUP then return err('BAD_ARGS', 'occurrences') end
  local last = skip_to or -1
  for j = 1, m do
    local t = time_arg(ARGV[i + 6 + j])
    if t == nil or t <= last then return err('BAD_ARGS', 'occurrence times') end
    p.times[j] = t
    last = t
  end
  i = i + 7 + m
  -- the checks that need no stored state hold whatever the outcome (even STALE or GONE)
  if (skip_from or p.times[1] or expected) < expected or last > now then
    return err('BAD_ARGS', 'plan of ' .. name)
  end
  if new_next and new_next <= last then return err('BAD_ARGS', 'new_next of ' .. name) end
  local h = redis.call('HMGET', SCHED_PREFIX .. name, 'rev', 'next_ms', 'paused', 'misfire',
    'end_ms', 'jitter_ms', 'fires', unpack(SCHED_DEF, 9))
  p.h = h
  if not h[1] then
    p.status = 'GONE'
  elseif h[3] == '1' then
    p.status = 'PAUSED'
  elseif tonumber(h[1]) ~= rev or tonumber(h[2] or '') ~= expected then
    p.status = 'STALE'
  else
    -- and those against the definition
    local end_ms = tonumber(h[5] or '')
    if (end_ms and last > end_ms) or (m > 1 and h[4] ~= 'all') then
      return err('BAD_ARGS', 'plan of ' .. name)
    end
    if new_next and end_ms and new_next > end_ms then
      return err('BAD_ARGS', 'new_next of ' .. name)
    end
    p.status = 'FIRED'
    p.new_next, p.skip_from, p.skip_to = new_next, skip_from, skip_to
  end
  plans[k] = p
end
if i ~= #ARGV + 1 then return err('BAD_ARGS', 'argument count') end

local out = {'OK'}
local wrote, total = false, 0
for _, p in ipairs(plans) do
  local published = 0
  if p.status == 'FIRED' then
    local h, name = p.h, p.name
    local gid = h[12] or ''
    local jitter = tonumber(h[6] or '') or 0
    local last_id = nil  -- the last job this fire wrote
    for _, t in ipairs(p.times) do
      local id = sched_job_id(name, t)
      if redis.call('EXISTS', job_key(id)) == 0 then
        local due = t + sched_jitter(name, t, jitter)
        local job = parse_job(sched_job_fields(id, h, 7, due), 0, now, 0)
        if job then  -- (a template stored by this script's schedule_set always parses)
          local x = job[8]
          local holder = x and x.dedup_key and dedup_holder(x.dedup_key, now)
          if holder then
            -- the previous occurrence still holds the key: no second job (dedup='replace':
            -- the waiting one takes this occurrence's payload)
            if x.dedup == 'replace' then dedup_replace(holder, h[8], due, now) end
          else
            emit('fired', id, gid, now, 'schedule', name, 'occurrence', fmt(t))
            write_job(id, gid, h[8], job, now, fmt(now),
              {'schedule', name, 'occurrence_ms', fmt(t)})
            if gid ~= '' then redis.call('SET', K_HAS_GROUPS, '1') end
            published = published + 1
            last_id = id
          end
        end
      end
    end
    local sk = SCHED_PREFIX .. name
    local args = {sk, 'next_ms', p.new_next and fmt(p.new_next) or ''}
    if #p.times > 0 then
      -- last_ms: the latest occurrence fired, its job written now, before, or held off
      -- by its dedup key (no later fire goes back to it)
      args[#args + 1] = 'last_ms'
      args[#args + 1] = fmt(p.times[#p.times])
      args[#args + 1] = 'fired_ms'
      args[#args + 1] = fmt(now)
    end
    if last_id then
      args[#args + 1] = 'last_job_id'
      args[#args + 1] = last_id
      args[#args + 1] = 'fires'
      args[#args + 1] = fmt((tonumber(h[7] or '') or 0) + published)
    end
    if p.skip_to then
      args[#args + 1] = 'misfired_ms'
      args[#args + 1] = fmt(p.skip_to)
      emit('misfired', '', gid, now, 'schedule', name, 'from', fmt(p.skip_from),
        'occurrence', fmt(p.skip_to))
    end
    redis.call('HSET', unpack(args))
    redis.call('ZADD', K_SCHEDULES, p.new_next or '+inf', name)
    wrote = true
  end
  out[#out + 1] = p.status
  out[#out + 1] = fmt(published)
  total = total + published
end
if wrote then
  if total > 0 then stamps[#stamps + 1] = 'last_enqueue_ms' end
  finish(now)
end
return out
