--[[
  Replaces a source's JSON, if nobody changed or deleted it meanwhile.

  KEYS[1] source id -> JSON (hash)     po:{t}:sources
  ARGV[1] source id
  ARGV[2] the JSON the caller read
  ARGV[3] the new JSON

  Returns: 1 updated; -21 no such source; -22 the JSON changed since it was
           read (read again).
]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  return -21
end
if current ~= ARGV[2] then
  return -22
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
