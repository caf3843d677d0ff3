-- partition: store the partition count of a logical queue, once.
-- KEYS[1] is the logical queue's anchor "{name}:meta"; the layout lives in "{name}:partitions".
-- ARGV: partitions (1-1024). The queue must hold no job and no schedule in its
-- unpartitioned form.
-- Reply: {'OK', n, '1' if stored now else '0'} | {'ERR', 'PARTITION_CONFLICT', stored}
--        | {'ERR', 'QUEUE_NOT_EMPTY', jobs | '<n> schedules'} | {'ERR', 'BAD_ARGS', detail}
if #ARGV ~= 1 then return err('BAD_ARGS', 'argument count') end
local n = int(ARGV[1])
if n == nil or n < 1 or n > MAX_PARTITIONS then return err('BAD_ARGS', 'partitions') end
local K_LAYOUT = B .. ':partitions'
local stored = redis.call('GET', K_LAYOUT)
if stored then
  if stored == fmt(n) then return {'OK', stored, '0'} end
  return err('PARTITION_CONFLICT', stored)
end
local jobs = redis.call('ZCARD', K_IDX_WAIT) + redis.call('LLEN', K_WAIT)
  + redis.call('ZCARD', K_DELAYED) + redis.call('ZCARD', K_ACTIVE)
  + redis.call('LLEN', K_FAILED) + redis.call('LLEN', K_COMPLETED)
  + redis.call('ZCARD', B .. WAITING_DEPS)
if jobs > 0 then return err('QUEUE_NOT_EMPTY', fmt(jobs)) end
-- its schedules would stay here, where no fire may publish (docs/schedules.md)
local schedules = redis.call('ZCARD', K_SCHEDULES)
if schedules > 0 then return err('QUEUE_NOT_EMPTY', fmt(schedules) .. ' schedules') end
redis.call('SET', K_LAYOUT, fmt(n))
return {'OK', fmt(n), '1'}
