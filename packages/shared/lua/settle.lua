--[[
  Records the outcome of a batch of deliveries of one publisher in one
  round trip: acknowledges delivered and dead entries, schedules retries,
  and appends each attempt to the message's history.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  KEYS[3] attempts (hash: stream id -> attempts so far)
  KEYS[4] dead letters (zset: stream id -> dead since ms)
  KEYS[5..4+n] the history hash of each item's message
  ARGV[1] consumer group (the publisher id, also the history field)
  ARGV[2] history TTL (seconds)
  ARGV[3] most attempts kept per history
  ARGV[4] n, the number of items
  ARGV[5..] n groups of five:
          stream id,
          outcome: 'd' delivered, 'r' retry, 'x' dead,
          score: due ms ('r'), time it became dead ms ('x'), '' ('d'),
          the attempt as JSON,
          next attempt ISO time ('r'), dead reason ('x'), '' ('d')

  Returns: n.
]]
local group = ARGV[1]
local ttl = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local b = 5 + i * 5
  local sid, outcome, score, attempt, extra = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local hkey = KEYS[5 + i]
  local raw = redis.call('HGET', hkey, group)
  local rec
  if raw then
    rec = cjson.decode(raw)
  else
    rec = { attempts = {}, attempt_count = 0 }
  end
  local attempts = rec.attempts
  attempts[#attempts + 1] = cjson.decode(attempt)
  while #attempts > keep do
    table.remove(attempts, 1)
  end
  rec.attempt_count = (rec.attempt_count or 0) + 1
  rec.next_attempt_at = nil
  rec.dead_reason = nil
  if outcome == 'd' then
    redis.call('XACK', KEYS[1], group, sid)
    redis.call('ZREM', KEYS[2], sid)
    redis.call('HDEL', KEYS[3], sid)
    rec.state = 'delivered'
  elseif outcome == 'r' then
    redis.call('ZADD', KEYS[2], score, sid)
    redis.call('HSET', KEYS[3], sid, rec.attempt_count)
    rec.state = 'retrying'
    rec.next_attempt_at = extra
  else
    redis.call('XACK', KEYS[1], group, sid)
    redis.call('ZREM', KEYS[2], sid)
    redis.call('HDEL', KEYS[3], sid)
    redis.call('ZADD', KEYS[4], score, sid)
    rec.state = 'dead'
    rec.dead_reason = extra
  end
  redis.call('HSET', hkey, group, cjson.encode(rec))
  redis.call('EXPIRE', hkey, ttl)
end
return n
