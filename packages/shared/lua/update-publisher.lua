--[[
  Replaces a publisher's JSON, if nobody changed it meanwhile.

  KEYS[1] publisher id -> JSON (hash)      po:{t}:publishers
  KEYS[2] "type target" -> publisher id    po:{t}:targets
  ARGV[1] publisher id
  ARGV[2] the JSON the caller read
  ARGV[3] the new JSON
  ARGV[4] old uniqueness key, ARGV[5] new uniqueness key

  Returns: 1 updated; -3 no such publisher; -2 another publisher has the new
           type and target; -5 the JSON changed since it was read (read again).
]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  return -3
end
if current ~= ARGV[2] then
  return -5
end
if ARGV[4] ~= ARGV[5] then
  if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then
    return -2
  end
  redis.call('HDEL', KEYS[2], ARGV[4])
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
