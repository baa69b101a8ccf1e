--[[
  Creates a publisher of a topic and its consumer group.

  KEYS[1] topic record (hash)                po:{t}:topic
  KEYS[2] publisher id -> JSON (hash)        po:{t}:publishers
  KEYS[3] "type target" -> publisher id      po:{t}:targets
  KEYS[4] the topic's stream                 po:{t}:stream
  ARGV[1] publisher id (also the group name)
  ARGV[2] publisher JSON
  ARGV[3] uniqueness key, "type target"
  ARGV[4] where the group starts: '$' (from now) or '0' (every retained message)

  Returns: 1 created; -1 no such topic; -2 same type and target exist
           (nothing written in either case). An error (BUSYGROUP) when a
           group of that name exists already, also with nothing written:
           the group is created before the records.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then
  return -2
end
redis.call('XGROUP', 'CREATE', KEYS[4], ARGV[1], ARGV[4], 'MKSTREAM')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
return 1
