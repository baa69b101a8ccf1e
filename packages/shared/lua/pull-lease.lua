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
  age, or that was leased the publisher's max attempts already, becomes a
  dead letter instead of being given out again (a message that kills every
  worker that takes it must not go round for ever).

  Ordered publishers (ARGV[14] = '1'): messages with the same ordering key
  (the value of attribute ARGV[15]; '' without it, or for every message when
  ARGV[15] is '') are given out one at a time, in stream order: only a key's
  earliest entry in the retries set may be leased, once its score has come
  (so while it is leased or waits for a retry, the key gives out nothing).
  New messages read for a key that has an entry there wait in the set
  behind it (score `now`). The set is read whole, up to `scan` entries;
  when it holds more, no new message is read.

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
  ARGV[12] max attempts: an expired lease of a message leased that many times dies; 0 for no limit
  ARGV[13] the note of such a dead letter (JSON)
  ARGV[14] '1' for an ordered publisher, '0' otherwise
  ARGV[15] the ordering attribute ('' for one key)
  ARGV[16] optional: most payload bytes to lease in this call: leasing stops once the
           leased payloads reach it (with at least one message leased)
  A filter value is a string, or a list of strings (any of them matches).

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
    local value = attrs[k]
    if type(v) == 'table' then
      local any = false
      for _, one in ipairs(v) do
        if value == one then
          any = true
          break
        end
      end
      if not any then
        return false
      end
    elseif value ~= v then
      return false
    end
  end
  return true
end

local maxAttempts = tonumber(ARGV[12]) or 0
local ordered = ARGV[14] == '1'
local attribute = ARGV[15] or ''

-- Whether an expired lease must die instead of being given out again (too old, or leased too often).
local function dies(sid)
  if redis.call('HEXISTS', KEYS[4], sid) == 0 then
    return nil
  end
  if tonumber(string.match(sid, '^(%d+)')) < oldest then
    return ARGV[11]
  end
  if maxAttempts > 0 and (tonumber(redis.call('HGET', KEYS[3], sid)) or 0) >= maxAttempts then
    return ARGV[13]
  end
  return nil
end

local function die(sid, note)
  local previous = redis.call('HGET', KEYS[4], sid)
  redis.call('XACK', KEYS[1], group, sid)
  redis.call('ZREM', KEYS[2], sid)
  redis.call('HDEL', KEYS[3], sid)
  redis.call('HDEL', KEYS[4], sid)
  redis.call('ZADD', KEYS[5], now, sid)
  redis.call('HSET', KEYS[6], sid, note)
  died[#died + 1] = { sid, previous }
end

local function keyOf(fields)
  if attribute == '' then
    return ''
  end
  local raw = field(fields, 'a')
  if raw then
    local ok, attrs = pcall(cjson.decode, raw)
    if ok and type(attrs) == 'table' and type(attrs[attribute]) == 'string' then
      return attrs[attribute]
    end
  end
  return ''
end

-- Stream ids compare by their two numbers: by length first, then as text.
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end

local picked = {}
local budget = tonumber(ARGV[16]) or math.huge
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

local function gone(sid)
  -- trimmed or deleted: nothing to give out
  redis.call('ZREM', KEYS[2], sid)
  redis.call('HDEL', KEYS[3], sid)
  redis.call('HDEL', KEYS[4], sid)
end

if ordered then
  -- Each key's head (its earliest entry in the set); a head whose score has come may go.
  local all = redis.call('ZRANGE', KEYS[2], 0, scan, 'WITHSCORES')
  local truncated = #all / 2 > scan
  local heads = {}
  local order = {}
  for j = 1, math.min(#all / 2, scan) do
    local sid, score = all[2 * j - 1], tonumber(all[2 * j])
    local entry = redis.call('XRANGE', KEYS[1], sid, sid)
    if #entry == 0 then
      gone(sid)
    else
      local key = keyOf(entry[1][2])
      local head = heads[key]
      if head == nil then
        order[#order + 1] = key
      end
      if head == nil or before(sid, head[1]) then
        heads[key] = { sid, score, entry[1][2] }
      end
    end
  end
  local ready = {}
  for _, key in ipairs(order) do
    if heads[key][2] <= now then
      ready[#ready + 1] = key
    end
  end
  table.sort(ready, function(a, b)
    return before(heads[a][1], heads[b][1])
  end)
  for _, key in ipairs(ready) do
    if full() then
      break
    end
    local head = heads[key]
    local note = dies(head[1])
    if note then
      -- The key's next message is its head now, at the next call.
      die(head[1], note)
    elseif matches(head[3]) then
      take(head[1], head[3])
    end
  end
  local count = math.min(max - #picked, scan - #all / 2)
  if not truncated and count > 0 then
    local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', KEYS[1], '>')
    if reply then
      for _, e in ipairs(reply[1][2]) do
        local key = keyOf(e[2])
        if heads[key] == nil and not full() and matches(e[2]) then
          take(e[1], e[2])
        else
          redis.call('ZADD', KEYS[2], now, e[1])
        end
        if heads[key] == nil then
          heads[key] = { e[1], now, e[2] }
        end
      end
    end
  end
  return { picked, died }
end

local scanned = 0
local due = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'LIMIT', 0, scan)
for _, sid in ipairs(due) do
  if full() then
    break
  end
  scanned = scanned + 1
  local entry = redis.call('XRANGE', KEYS[1], sid, sid)
  local note = #entry > 0 and dies(sid)
  if #entry == 0 then
    gone(sid)
  elseif note then
    die(sid, note)
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
