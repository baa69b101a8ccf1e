--[[
  Writes new leases of a pull publisher into their messages' histories:
  the lease a message was given out again after is marked expired, and the
  new one is appended (state 'leased'). Informational only: the leases
  themselves were taken atomically by pull-lease; this runs right after.

  KEYS[1] .. KEYS[n] the history hash of each leased message
  ARGV[1] consumer group (the publisher id, also the history field)
  ARGV[2] history TTL (seconds)
  ARGV[3] most attempts kept per history
  ARGV[4] n
  ARGV[5..] n groups of three: the new attempt JSON, the attempt count,
          the token of the previous (expired) lease or ''

  Returns: n.
]]
local group = ARGV[1]
local ttl, keep, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 0, n - 1 do
  local b = 5 + i * 3
  local hkey = KEYS[1 + i]
  local raw = redis.call('HGET', hkey, group)
  local rec
  if raw then
    rec = cjson.decode(raw)
  else
    rec = { attempts = {} }
  end
  if ARGV[b + 2] ~= '' then
    for j = #rec.attempts, 1, -1 do
      local a = rec.attempts[j]
      if a.token == ARGV[b + 2] then
        if a.outcome == 'leased' then
          a.outcome = 'expired'
          a.ended_at = a.lease_expires_at
        end
        break
      end
    end
  end
  rec.attempts[#rec.attempts + 1] = cjson.decode(ARGV[b])
  while #rec.attempts > keep do
    table.remove(rec.attempts, 1)
  end
  rec.attempt_count = tonumber(ARGV[b + 1])
  rec.state = 'leased'
  rec.next_attempt_at = nil
  rec.dead_reason = nil
  redis.call('HSET', hkey, group, cjson.encode(rec))
  redis.call('EXPIRE', hkey, ttl)
end
return n
