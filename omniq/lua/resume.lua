-- resume: clear the pause flag. ARGV: none. Reply: {'OK', '1' if it was paused else '0'}
local was = redis.call('DEL', K_PAUSED)
if was == 1 then redis.call('PUBLISH', WAKE_CHANNEL, '1') end
return {'OK', fmt(was)}
