--[[
  Keeps a message aside until its time: it enters the topic's stream
  (release-scheduled.lua) at or after its due time.

  KEYS[1] topic record (hash)                     po:{t}:topic
  KEYS[2] scheduled (zset: message id -> due ms)  po:{t}:scheduled
  KEYS[3] scheduled data (hash: message id -> JSON {p, a, at, created_at})
  ARGV[1] message id (UUID)
  ARGV[2] due time (ms)
  ARGV[3] the message as JSON {p: payload JSON, a: attributes JSON or '', at: ISO due time, created_at}

  Returns: -1 when the topic does not exist (nothing written); 1 otherwise.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
