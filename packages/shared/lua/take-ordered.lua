--[[
  The retries an ordering-key publisher may send now. Messages with the same
  ordering key (the value of one attribute; '' for messages without it, or
  for every message when no attribute is named) go in stream order, one at
  a time: only a key's earliest entry in the retry set (its head) may be
  taken, once due, and only when the key has nothing in flight on the node.
  A taken head is leased as take-retries.lua does (its score moves to the
  lease end). Entries whose message was trimmed are dropped.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  KEYS[3] attempts (hash: stream id -> retry state)
  ARGV[1] now (ms)
  ARGV[2] lease end (ms)
  ARGV[3] the ordering attribute, or '' (one key for the whole publisher)
  ARGV[4] most heads to take
  ARGV[5] most entries to look at (the earliest due first)
  ARGV[6] '1' to take the earliest heads whatever their due time (a probe), '0' otherwise
  ARGV[7..] keys busy on the node (a message in flight): their heads are not taken

  Returns: { the earliest due time of a head left that may be taken later (not busy), or '',
             { {stream id, retry state or '0', {field, value, ...}}, ... } taken,
             { key, ... } every key with an entry left in the retry set,
             1 when the retry set holds more than ARGV[5] entries (some keys unseen), else 0 }
]]
local now, leaseEnd = tonumber(ARGV[1]), ARGV[2]
local attribute = ARGV[3]
local max, scan = tonumber(ARGV[4]), tonumber(ARGV[5])
local force = ARGV[6] == '1'
local busy = {}
for i = 7, #ARGV do
  busy[ARGV[i]] = true
end

-- Stream ids compare by their two numbers: by length first, then as text (no precision lost).
local function parts(sid)
  local ms, seq = string.match(sid, '^(%d+)-(%d+)$')
  return ms or '0', seq or '0'
end
local function before(a, b)
  local am, as = parts(a)
  local bm, bs = parts(b)
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end

local function keyOf(fields)
  if attribute == '' then
    return ''
  end
  for i = 1, #fields, 2 do
    if fields[i] == 'a' then
      local ok, attrs = pcall(cjson.decode, fields[i + 1])
      if ok and type(attrs) == 'table' and type(attrs[attribute]) == 'string' then
        return attrs[attribute]
      end
      return ''
    end
  end
  return ''
end

local entries = redis.call('ZRANGE', KEYS[2], 0, scan, 'WITHSCORES')
local truncated = 0
local count = #entries / 2
if count > scan then
  truncated = 1
  count = scan
end
local heads = {}
local order = {}
for j = 1, count do
  local sid = entries[2 * j - 1]
  local score = tonumber(entries[2 * j])
  local entry = redis.call('XRANGE', KEYS[1], sid, sid)
  if #entry == 0 then
    redis.call('ZREM', KEYS[2], sid)
    redis.call('HDEL', KEYS[3], sid)
  else
    local key = keyOf(entry[1][2])
    local head = heads[key]
    if head == nil then
      order[#order + 1] = key
      heads[key] = { sid, score, entry[1][2] }
    elseif before(sid, head[1]) then
      heads[key] = { sid, score, entry[1][2] }
    end
  end
end

-- The heads that may go now, earliest due first.
local ready = {}
for _, key in ipairs(order) do
  if not busy[key] then
    ready[#ready + 1] = key
  end
end
table.sort(ready, function(a, b)
  return heads[a][2] < heads[b][2]
end)
local taken = {}
local next = nil
for _, key in ipairs(ready) do
  local head = heads[key]
  if #taken < max and (force or head[2] <= now) then
    redis.call('ZADD', KEYS[2], leaseEnd, head[1])
    taken[#taken + 1] = { head[1], redis.call('HGET', KEYS[3], head[1]) or '0', head[3] }
  elseif next == nil or head[2] < next then
    next = head[2]
  end
end
local keys = {}
for _, key in ipairs(order) do
  keys[#keys + 1] = key
end
return { next and string.format('%.0f', next) or '', taken, keys, truncated }
