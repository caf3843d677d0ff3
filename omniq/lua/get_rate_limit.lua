-- get_rate_limit: rate limits of the queue and how many reservations their windows hold
-- now. Writes nothing.
-- ARGV: now_ms, which ('queue' | 'group' | 'all'), gid (which = 'group' only, else '')
-- Reply: {'OK', n, then per limit: gid ('' = queue-wide), max_jobs, per_ms, in_window}
--        (the queue-wide limit first, then the groups' in gid order)
--        | {'ERR', 'BAD_ARGS', detail}
if #ARGV ~= 3 then return err('BAD_ARGS', 'argument count') end
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local which, gid = ARGV[2], ARGV[3]
if which ~= 'queue' and which ~= 'group' and which ~= 'all' then
  return err('BAD_ARGS', 'which')
end
if which == 'group' then
  if not valid_id(gid) then return err('BAD_ARGS', 'gid') end
elseif gid ~= '' then
  return err('BAD_ARGS', 'gid')
end
local found = {}  -- {gid, stored value}
if which == 'queue' or which == 'all' then
  local v = redis.call('HGET', K_RATE, 'queue')
  if v then found[#found + 1] = {'', v} end
end
if which == 'group' then
  local v = redis.call('HGET', K_RATE, 'g:' .. gid)
  if v then found[#found + 1] = {gid, v} end
elseif which == 'all' then
  local groups = {}
  local h = redis.call('HGETALL', K_RATE)
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == 'g:' then groups[#groups + 1] = {string.sub(h[i], 3), h[i + 1]} end
  end
  table.sort(groups, function(a, b) return a[1] < b[1] end)
  for _, g in ipairs(groups) do found[#found + 1] = g end
end
local out = {'OK', '0'}
local n = 0
for _, f in ipairs(found) do
  local max, per = rate_parse(f[2])
  if max then
    local log = f[1] == '' and K_RATE_LOG or gkey(f[1], ':rate_log')
    local used = redis.call('ZCOUNT', log, '(' .. fmt(now - per), '+inf')
    n = n + 1
    for _, v in ipairs({f[1], fmt(max), fmt(per), fmt(used)}) do out[#out + 1] = v end
  end
end
out[2] = fmt(n)
return out
