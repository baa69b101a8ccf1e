--[[
  Extends a lease if the caller still holds it.

  KEYS[1] the lease key
  ARGV[1] the holder's token
  ARGV[2] new time to live (ms)

  Returns: 1 extended; 0 the lease is not the caller's (lost).
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
