--[[
  Creates a topic unless one of that name exists.

  KEYS[1] topic record (hash)   po:{t}:topic
  ARGV[1] topic JSON (id, name, origin_host, recovery_enabled, created_at)

  Returns: 1 created; -4 the name is taken (nothing written).
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return -4
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'received', 0)
return 1
