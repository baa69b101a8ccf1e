--[[
  Changes fields of a topic's record (the web UI edits its origin host).

  KEYS[1] topic record (hash)   po:{t}:topic
  ARGV[1] JSON object of the fields to set (origin_host, recovery_enabled, paused)

  Returns: the new topic JSON; -8 no such topic (nothing written).
]]
local current = redis.call('HGET', KEYS[1], 'json')
if not current then
  return -8
end
local topic = cjson.decode(current)
for field, value in pairs(cjson.decode(ARGV[1])) do
  topic[field] = value
end
local json = cjson.encode(topic)
redis.call('HSET', KEYS[1], 'json', json)
return json
