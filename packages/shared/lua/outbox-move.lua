--[[
  Adds one replacement message from an outbox to its topic, once: a message
  whose id the topic already indexes is not added again, so moving the same
  outbox entry twice (a retry after a failure, two movers at once) adds it
  once.

  KEYS[1] topic record (hash)           po:{t}:topic
  KEYS[2] the topic's stream            po:{t}:stream
  KEYS[3] message id -> stream id       po:{t}:ids
  ARGV[1] message id (UUID), assigned when the replacement was accepted
  ARGV[2] payload JSON
  ARGV[3] attributes JSON ('' when there are none)

  Returns: the stream entry id (new, or the one it already had); -1 when
           the topic does not exist (nothing written).
]]
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then
  return existing
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local sid
if ARGV[3] == '' then
  sid = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'p', ARGV[2])
else
  sid = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'p', ARGV[2], 'a', ARGV[3])
end
redis.call('HSET', KEYS[3], ARGV[1], sid)
redis.call('HINCRBY', KEYS[1], 'received', 1)
return sid
