-- remove_jobs_batch: remove_job for up to 100 ids of one lane.
-- ARGV: lane, count, id1..idN, now_ms, [events_maxlen]
-- Reply: {'OK', n, then per id: id, 'OK'|'ERR', reason ('' when OK)} | {'ERR', code, detail}
local lane = ARGV[1]
local n = int(ARGV[2])
if n == nil or n < 0 then return err('BAD_ARGS', 'count') end
if n > MAX_BATCH then return err('BATCH_TOO_LARGE', fmt(MAX_BATCH)) end
if LANE_STATE[lane] == nil then return err('BAD_LANE', lane) end
if #ARGV ~= 3 + n and #ARGV ~= 4 + n then return err('BAD_ARGS', 'argument count') end
local now = clock(ARGV[3 + n])
if now == nil then return err('BAD_ARGS', 'now_ms') end
events_maxlen = events_arg(ARGV[4 + n])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local out = {'OK', fmt(n)}
local ok = 0
for i = 1, n do
  local id = ARGV[2 + i]
  out[#out + 1] = id
  if push_status(out, remove_one(id, lane, now)) then ok = ok + 1 end
end
if ok > 0 then
  settle_dependents(now)
  finish(now)
end
return out
