--[[
  Leases up to `max` messages of a pull publisher to one worker. A message
  is available when its publisher's group has not given it out yet, or when
  it waits in the retries set with a score that has come (a retry that is
  due, or a lease that expired). A leased message stays pending in the
  group and waits in the retries set with its lease end as score, so it is
  given out again by itself if the worker never answers. With a filter,
  at most `scan` available messages are looked at; those that do not match
  (and new ones read beyond `max`) are left available (score `now`).
  A message whose lease ran out unanswered and that is older than the max
  age becomes a dead letter instead of being given out again (a message
  that kills every worker that takes it must not go round for ever).

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due or lease end, ms)
  KEYS[3] attempts (hash: stream id -> leases so far)
  KEYS[4] leases (hash: stream id -> current lease JSON)
  KEYS[5] dead letters (zset: stream id -> dead since ms)
  KEYS[6] notes (hash: stream id -> JSON note)
  ARGV[1] consumer group (the publisher id)
  ARGV[2] consumer name the group records for leased entries
  ARGV[3] now (ms)
  ARGV[4] lease length (ms)
  ARGV[5] most messages to lease
  ARGV[6] most available messages to look at
  ARGV[7] attribute filter as a JSON object of strings, or '' for none
  ARGV[8] worker JSON
  ARGV[9] a random string; tokens are "<group>.<stream id>.<ARGV[9]><n>"
  ARGV[10] max age (ms): expired leases of messages received before now - max age die
  ARGV[11] the note of such a dead letter (JSON)
  ARGV[12] optional: most payload bytes to lease in this call: leasing stops once the
           leased payloads reach it (with at least one message leased)

  Returns: { { {stream id, {field, value, ...}, attempt, token, previous lease JSON or ''}, ... },
             { {stream id, the expired lease JSON}, ... } (the new dead letters) }
  A previous lease is one that ran out unanswered: the caller logs it as expired.
]]
local group, consumer = ARGV[1], ARGV[2]
local now, leaseMs = tonumber(ARGV[3]), tonumber(ARGV[4])
local max, scan = tonumber(ARGV[5]), tonumber(ARGV[6])
local filter = nil
if ARGV[7] ~= '' then
  filter = cjson.decode(ARGV[7])
end
local worker = cjson.decode(ARGV[8])
local oldest = now - tonumber(ARGV[10])
local died = {}

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then
      return fields[i + 1]
    end
  end
  return nil
end

local function matches(fields)
  if not filter then
    return true
  end
  local raw = field(fields, 'a')
  local attrs = {}
  if raw then
    attrs = cjson.decode(raw)
  end
  for k, v in pairs(filter) do
    if attrs[k] ~= v then
      return false
    end
  end
  return true
end

local picked = {}
local budget = tonumber(ARGV[12]) or math.huge
local bytes = 0
local function full()
  return #picked >= max or bytes >= budget
end
local function take(sid, fields)
  bytes = bytes + #(field(fields, 'p') or '')
  local previous = redis.call('HGET', KEYS[4], sid) or ''
  local attempt = redis.call('HINCRBY', KEYS[3], sid, 1)
  local token = group .. '.' .. sid .. '.' .. ARGV[9] .. (#picked + 1)
  local lease = {
    token = token,
    worker = worker,
    leased_at = now,
    expires_at = now + leaseMs,
    attempt = attempt,
  }
  redis.call('HSET', KEYS[4], sid, cjson.encode(lease))
  redis.call('ZADD', KEYS[2], now + leaseMs, sid)
  picked[#picked + 1] = { sid, fields, attempt, token, previous }
end

local scanned = 0
local due = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'LIMIT', 0, scan)
for _, sid in ipairs(due) do
  if full() then
    break
  end
  scanned = scanned + 1
  local entry = redis.call('XRANGE', KEYS[1], sid, sid)
  if #entry == 0 then
    -- trimmed or deleted: nothing to give out
    redis.call('ZREM', KEYS[2], sid)
    redis.call('HDEL', KEYS[3], sid)
    redis.call('HDEL', KEYS[4], sid)
  elseif tonumber(string.match(sid, '^(%d+)')) < oldest and redis.call('HEXISTS', KEYS[4], sid) == 1 then
    local previous = redis.call('HGET', KEYS[4], sid)
    redis.call('XACK', KEYS[1], group, sid)
    redis.call('ZREM', KEYS[2], sid)
    redis.call('HDEL', KEYS[3], sid)
    redis.call('HDEL', KEYS[4], sid)
    redis.call('ZADD', KEYS[5], now, sid)
    redis.call('HSET', KEYS[6], sid, ARGV[11])
    died[#died + 1] = { sid, previous }
  elseif matches(entry[1][2]) then
    take(sid, entry[1][2])
  end
end

-- New messages in small reads, so that a script never holds many large payloads at once.
local left = max - #picked
if filter then
  left = scan - scanned
end
while not full() and left > 0 do
  local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', math.min(left, 16), 'STREAMS', KEYS[1], '>')
  if not reply then
    break
  end
  local entries = reply[1][2]
  left = left - #entries
  for _, e in ipairs(entries) do
    if not full() and matches(e[2]) then
      take(e[1], e[2])
    else
      redis.call('ZADD', KEYS[2], now, e[1])
    end
  end
  if #entries == 0 then
    break
  end
end
return { picked, died }
