--[[
  Trims a topic's stream below the oldest entry that is still needed: by a
  publisher that has not read it yet, by one that has it pending (in flight
  or waiting for a retry), or by the retention period. Index entries of
  trimmed messages are removed with them. An undelivered message is never
  trimmed.

  KEYS[1] the topic's stream           po:{t}:stream
  KEYS[2] message id -> stream id      po:{t}:ids
  ARGV[1] retention cutoff (ms): entries received before it may go
  ARGV[2] most entries to remove in this call

  Returns: { entries removed, 1 when more could be removed (call again) or 0 }
]]
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return { tonumber(ms), tonumber(seq) }
end
local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 0, 0 }
end
local floor = { tonumber(ARGV[1]), 0 }
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do
    info[g[i]] = g[i + 1]
  end
  local last = parse(info['last-delivered-id'])
  local needed = { last[1], last[2] + 1 }
  if tonumber(info['pending']) > 0 then
    local summary = redis.call('XPENDING', KEYS[1], info['name'])
    local oldest = parse(summary[2])
    if less(oldest, needed) then
      needed = oldest
    end
  end
  if less(needed, floor) then
    floor = needed
  end
end
local budget = tonumber(ARGV[2])
local old = redis.call('XRANGE', KEYS[1], '-', '(' .. floor[1] .. '-' .. floor[2], 'COUNT', budget)
if #old == 0 then
  return { 0, 0 }
end
local ids = {}
for _, e in ipairs(old) do
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == 'id' then
      ids[#ids + 1] = f[i + 1]
      break
    end
  end
  if #ids >= 1000 then
    redis.call('HDEL', KEYS[2], unpack(ids))
    ids = {}
  end
end
if #ids > 0 then
  redis.call('HDEL', KEYS[2], unpack(ids))
end
local more = 0
local minid = floor[1] .. '-' .. floor[2]
if #old == budget then
  local last = parse(old[#old][1])
  minid = last[1] .. '-' .. (last[2] + 1)
  more = 1
end
local removed = redis.call('XTRIM', KEYS[1], 'MINID', minid)
return { removed, more }
