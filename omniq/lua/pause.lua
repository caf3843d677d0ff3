-- pause: flag only; running and delayed jobs are untouched. ARGV: none. Reply: {'OK'}
redis.call('SET', K_PAUSED, '1')
return {'OK'}
