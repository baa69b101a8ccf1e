--[[
  Records a message recovery round on a topic's record, if the topic exists
  (a topic deleted meanwhile is not brought back as an empty record).

  KEYS[1] topic record (hash)   po:{t}:topic
  ARGV[1] the round as JSON {at, error}
  ARGV[2] messages recovered into the topic in the round

  Returns: 1 recorded; 0 no such topic (nothing written).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'recovery', ARGV[1])
local n = tonumber(ARGV[2])
if n > 0 then
  redis.call('HINCRBY', KEYS[1], 'recovered', n)
end
return 1
