--[[
  Deletes a publisher: its record, its consumer group, its retry and
  dead-letter sets, leases, attempt log, notes, range records, counters and circuit record. The topic's messages
  stay for the other publishers.

  KEYS[1] publisher id -> JSON (hash)      po:{t}:publishers
  KEYS[2] "type target" -> publisher id    po:{t}:targets
  KEYS[3] the topic's stream               po:{t}:stream
  KEYS[4] retries (zset), KEYS[5] attempts (hash), KEYS[6] dead letters (zset)
  KEYS[7] leases (hash), KEYS[8] attempt log (zset), KEYS[9] notes (hash)
  KEYS[10] range records (zset: purges and seeks)
  KEYS[11] counters (hash: skipped, deleted, delivered)
  KEYS[12] (optional) the circuit breaker's record (string)
  ARGV[1] publisher id

  Returns: 1 deleted; -3 no such publisher.
]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  return -3
end
local p = cjson.decode(current)
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], p.type .. ' ' .. p.target) == ARGV[1] then
  redis.call('HDEL', KEYS[2], p.type .. ' ' .. p.target)
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  pcall(redis.call, 'XGROUP', 'DESTROY', KEYS[3], ARGV[1])
end
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
if KEYS[12] then
  redis.call('DEL', KEYS[12])
end
return 1
