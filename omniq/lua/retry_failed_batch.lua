-- retry_failed_batch: retry_failed for up to 100 ids.
-- ARGV: now_ms, count, id1..idN, [events_maxlen]
-- Reply: {'OK', n, then per id: id, 'OK'|'ERR', reason ('' when OK)} | {'ERR', code, detail}
local now = clock(ARGV[1])
if now == nil then return err('BAD_ARGS', 'now_ms') end
local n = int(ARGV[2])
if n == nil or n < 0 then return err('BAD_ARGS', 'count') end
if n > MAX_BATCH then return err('BATCH_TOO_LARGE', fmt(MAX_BATCH)) end
if #ARGV ~= 2 + n and #ARGV ~= 3 + n then return err('BAD_ARGS', 'argument count') end
events_maxlen = events_arg(ARGV[3 + n])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local out = {'OK', fmt(n)}
local ok = 0
for i = 1, n do
  local id = ARGV[2 + i]
  out[#out + 1] = id
  if push_status(out, retry_failed_one(id, now)) then ok = ok + 1 end
end
if ok > 0 then finish(now) end
return out
