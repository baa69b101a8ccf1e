--[[
  Adds a source to an existing topic.

  KEYS[1] topic record (hash)          po:{t}:topic
  KEYS[2] source id -> JSON (hash)     po:{t}:sources
  ARGV[1] source id
  ARGV[2] source JSON

  Returns: 1 created; -1 no such topic (nothing written).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
