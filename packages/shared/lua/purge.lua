--[[
  Purges a publisher's backlog: every message received before a time that
  the publisher has not delivered is skipped and never sent. Messages its
  group has not read yet are skipped all at once by moving the group's
  last-delivered id past them (XGROUP SETID), with one range record for
  all of them. Messages read and not settled (in flight, waiting for a
  retry, leased) are acknowledged and lose their retry state and lease;
  dead letters leave the dead set. Those two kinds already had a record of
  their own: each gets a note saying it was purged instead. With the dry
  run, nothing is written and the answer is the same.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  KEYS[3] attempts (hash: stream id -> retry state)
  KEYS[4] dead letters (zset: stream id -> dead since ms)
  KEYS[5] notes (hash: stream id -> JSON note)
  KEYS[6] leases (hash: stream id -> lease JSON)
  KEYS[7] ranges (zset: JSON record -> receipt ms of the newest message it covers)
  ARGV[1] consumer group (the publisher id)
  ARGV[2] before (ms): messages received before it are purged
  ARGV[3] the purge's time (ms), kept in the range record
  ARGV[4] the purge's ISO time, kept in the notes (last_action)
  ARGV[5] '1' for a dry run (count only), '0' to purge

  Returns: { the group's last-delivered id before,
             its last-delivered id after (the newest entry received before
             `before` when that is later, else the same),
             how many unread entries that skips when Redis knows it without
             counting (the group's lag, when the skip reaches the stream's
             end), else -1: count the entries between the two ids,
             entries pending that were acknowledged,
             dead letters dropped }
           -3 when the stream exists but the group does not (nothing written).
]]
local group, dry = ARGV[1], ARGV[5] == '1'
local before = tonumber(ARGV[2])

-- Stream ids compared exactly (their parts may exceed what a Lua number holds).
local function cmp(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm and -1 or 1 end
  if am ~= bm then return am < bm and -1 or 1 end
  if #as ~= #bs then return #as < #bs and -1 or 1 end
  if as == bs then return 0 end
  return as < bs and -1 or 1
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return { '0-0', '0-0', 0, 0, 0 }
end
local last, lag = nil, -1
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  if info['name'] == group then
    last = info['last-delivered-id']
    if type(info['lag']) == 'number' then lag = info['lag'] end
  end
end
if not last then
  return -3
end
if before <= 0 then
  return { last, last, 0, 0, 0 }
end
local bound = ARGV[2] .. '-0'

local function note(sid)
  local raw = redis.call('HGET', KEYS[5], sid)
  local n = {}
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then n = decoded end
  end
  n.purged = true
  n.last_action = { action = 'purged', at = ARGV[4] }
  redis.call('HSET', KEYS[5], sid, cjson.encode(n))
end

-- Read and not settled: in flight, retrying, leased.
local acked = 0
local start = '-'
while true do
  local page = redis.call('XPENDING', KEYS[1], group, start, '(' .. bound, 1000)
  for _, p in ipairs(page) do
    local sid = p[1]
    acked = acked + 1
    if not dry then
      redis.call('XACK', KEYS[1], group, sid)
      redis.call('ZREM', KEYS[2], sid)
      redis.call('HDEL', KEYS[3], sid)
      redis.call('HDEL', KEYS[6], sid)
      note(sid)
    end
  end
  if #page < 1000 then break end
  start = '(' .. page[#page][1]
end

-- Dead letters (acknowledged already).
local dropped = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if cmp(sid, bound) < 0 then
    dropped = dropped + 1
    if not dry then
      redis.call('ZREM', KEYS[4], sid)
      note(sid)
    end
  end
end

-- Not read yet: one move of the group, one record.
local after, skipped = last, 0
local newest = redis.call('XREVRANGE', KEYS[1], '(' .. bound, '-', 'COUNT', 1)[1]
if newest and cmp(newest[1], last) > 0 then
  after = newest[1]
  skipped = -1
  local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
  if lag >= 0 and tail and tail[1] == after then skipped = lag end
  if not dry then
    redis.call('XGROUP', 'SETID', KEYS[1], group, after)
    local record = cjson.encode({ kind = 'purge', at = ARGV[3], time = ARGV[2], from = last, through = after })
    redis.call('ZADD', KEYS[7], string.match(after, '^(%d+)'), record)
  end
end
return { last, after, skipped, acked, dropped }
