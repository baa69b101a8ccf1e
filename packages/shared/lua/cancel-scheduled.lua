--[[
  Cancels a scheduled message that has not entered its topic's stream yet:
  it is dropped and never delivered.

  KEYS[1] scheduled (zset: message id -> due ms)  po:{t}:scheduled
  KEYS[2] scheduled data (hash: message id -> JSON)
  KEYS[3] message id -> stream id                 po:{t}:ids
  ARGV[1] the message id

  Returns: 1 cancelled; -10 the message was already released into the
           stream (it is an ordinary message now); -11 no such scheduled
           message.
]]
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  return -10
end
return -11
