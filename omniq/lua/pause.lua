-- pause: flag only; running and delayed jobs are untouched.
-- ARGV: [events_maxlen]. Reply: {'OK'} ('paused' is emitted only when it was not paused)
events_maxlen = events_arg(ARGV[1])
if events_maxlen == nil then return err('BAD_ARGS', 'events_maxlen') end
if redis.call('EXISTS', K_PAUSED) == 0 then
  redis.call('SET', K_PAUSED, '1')
  emit('paused', '', '', clock(''))
  trim_events()
end
return {'OK'}
