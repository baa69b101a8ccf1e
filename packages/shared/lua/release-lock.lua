--[[
  Gives a lease back if the caller still holds it.

  KEYS[1] the lease key
  ARGV[1] the holder's token

  Returns: 1 released; 0 the lease was not the caller's.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
