--[[
  Deletes a topic that has no publisher: its record, its stream (the
  retained messages), its id index and its scheduled messages. Refused
  while any publisher exists, so no delivery ever loses its topic.

  KEYS[1] topic record (hash)                       po:{t}:topic
  KEYS[2] publisher id -> JSON (hash)               po:{t}:publishers
  KEYS[3] the topic's stream                        po:{t}:stream
  KEYS[4] message id -> stream id (hash)            po:{t}:ids
  KEYS[5] "type target" -> publisher id (hash)      po:{t}:targets
  KEYS[6] scheduled ids (zset), KEYS[7] scheduled data (hash), KEYS[8] outbox (hash)
  KEYS[9] optional: source id -> JSON (hash)        po:{t}:sources
  No ARGV[1]: the keys are all it needs.

  Returns: 1 deleted; -8 no such topic; -7 the topic has publishers; -20 the
           topic has sources (nothing deleted).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -8
end
if redis.call('HLEN', KEYS[2]) > 0 then
  return -7
end
if KEYS[9] and redis.call('HLEN', KEYS[9]) > 0 then
  return -20
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
return 1
