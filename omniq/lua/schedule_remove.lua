-- schedule_remove: delete schedule `name` of the queue (docs/schedules.md). Jobs it
-- published stay; a fire planned before the removal finds it gone and writes nothing.
-- ARGV: name
-- Reply: {'OK', '1' when it existed else '0'} | {'ERR', 'BAD_ARGS', detail}
if #ARGV ~= 1 then return err('BAD_ARGS', 'argument count') end
local name = ARGV[1]
if not valid_id(name) then return err('BAD_ARGS', 'name') end
local existed = redis.call('DEL', SCHED_PREFIX .. name)
redis.call('ZREM', K_SCHEDULES, name)
return {'OK', fmt(existed)}
