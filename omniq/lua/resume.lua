-- resume: clear the pause flag.
-- ARGV: [events_maxlen]. Reply: {'OK', '1' if it was paused else '0'}
events_maxlen = events_arg(ARGV[1])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
local was = redis.call('DEL', K_PAUSED)
if was == 1 then
  emit('resumed', '', '', clock(''))
  trim_events()
  redis.call('PUBLISH', WAKE_CHANNEL, '1')
end
return {'OK', fmt(was)}
