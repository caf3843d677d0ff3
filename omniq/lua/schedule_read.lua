-- schedule_read: the schedules of the queue and the clock, for listing them and for firing
-- the due ones (docs/schedules.md). Writes nothing.
-- ARGV: now_ms, mode, then by mode:
--   'one',  name:           that schedule (none when it does not exist)
--   'page', offset, limit:  schedules by next fire time (paused and ended ones last),
--                           ranks offset .. offset + limit - 1 (limit 1..MAX_PAGE)
--   'due',  limit:          up to limit (1..MAX_SCHEDULES_DUE) schedules due at now
-- Reply: {'OK', now, n, then per schedule the #SCHED_READ values of SCHED_READ, then
--   'one' and 'page': the number of schedules of the queue;
--   'due': the next fire time after those returned ('' when there is none)}
-- | {'ERR', 'BAD_ARGS', detail}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local mode = ARGV[2]
local names
local tail = nil
if mode == 'one' then
  if #ARGV ~= 3 then return err('BAD_ARGS', 'argument count') end
  if not valid_id(ARGV[3]) then return err('BAD_ARGS', 'name') end
  names = {ARGV[3]}
elseif mode == 'page' then
  if #ARGV ~= 4 then return err('BAD_ARGS', 'argument count') end
  local offset, limit = int(ARGV[3]), int(ARGV[4])
  if offset == nil or offset < 0 then return err('BAD_ARGS', 'offset') end
  if limit == nil or limit < 1 or limit > MAX_PAGE then return err('BAD_ARGS', 'limit') end
  names = redis.call('ZRANGE', K_SCHEDULES, offset, offset + limit - 1)
elseif mode == 'due' then
  if #ARGV ~= 3 then return err('BAD_ARGS', 'argument count') end
  local limit = int(ARGV[3])
  if limit == nil or limit < 1 or limit > MAX_SCHEDULES_DUE then
    return err('BAD_ARGS', 'limit')
  end
  names = redis.call('ZRANGEBYSCORE', K_SCHEDULES, '-inf', now, 'LIMIT', 0, limit)
  -- the next fire time after the due ones: the next rank (due too when more were due
  -- than the limit)
  tail = ''
  local after
  if #names == limit then
    after = redis.call('ZRANGE', K_SCHEDULES, limit, limit, 'WITHSCORES')
  else
    after = redis.call('ZRANGEBYSCORE', K_SCHEDULES, '(' .. fmt(now), '+inf', 'WITHSCORES',
      'LIMIT', 0, 1)
  end
  if after[2] and tonumber(after[2]) ~= math.huge then tail = fmt(tonumber(after[2])) end
else
  return err('BAD_ARGS', 'mode')
end
local out = {'OK', fmt(now), '0'}
local n = 0
for _, name in ipairs(names) do
  local h = redis.call('HMGET', SCHED_PREFIX .. name, unpack(SCHED_READ))
  if h[1] then  -- (a name whose hash is gone is left out)
    n = n + 1
    for i = 1, #SCHED_READ do out[#out + 1] = h[i] or '' end
  end
end
out[3] = fmt(n)
if tail then
  out[#out + 1] = tail
else
  out[#out + 1] = fmt(redis.call('ZCARD', K_SCHEDULES))
end
return out
