--[[
  Writes what pull-lease did into the messages' histories: the lease a
  message was given out again after (or died after) is marked expired, and
  the new lease appended (state 'leased'), or the message marked dead.
  Informational only: the leases themselves were taken atomically by
  pull-lease; this runs right after.

  KEYS[1] .. KEYS[n] the history hash of each leased message
  ARGV[1] consumer group (the publisher id, also the history field)
  ARGV[2] history TTL (seconds)
  ARGV[3] most attempts kept per history
  ARGV[4] n
  ARGV[5..] n groups of four: 'l' (leased) or 'x' (dead),
          the new attempt JSON ('l') or the dead reason ('x'),
          the attempt count ('l') or '' ('x'),
          the token of the previous (expired) lease or ''

  Returns: n.
]]
local group = ARGV[1]
local ttl, keep, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 0, n - 1 do
  local b = 5 + i * 4
  local mode = ARGV[b]
  b = b + 1
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
  rec.next_attempt_at = nil
  rec.dead_reason = nil
  if mode == 'x' then
    rec.state = 'dead'
    rec.dead_reason = ARGV[b]
  else
    rec.attempts[#rec.attempts + 1] = cjson.decode(ARGV[b])
    rec.attempt_count = tonumber(ARGV[b + 1])
    rec.state = 'leased'
  end
  while #rec.attempts > keep do
    table.remove(rec.attempts, 1)
  end
  redis.call('HSET', hkey, group, cjson.encode(rec))
  redis.call('EXPIRE', hkey, ttl)
end
return n
