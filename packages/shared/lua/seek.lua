--[[
  Seeks a publisher back in time: every retained message received at or
  after a time is given to it again, delivered or not. The group's
  last-delivered id moves back to the newest entry received before that
  time (XGROUP SETID), so its next reads give the later ones again; one
  range record says so for all of them. Messages after that point that wait
  for a retry or are leased lose that state (they are read again instead,
  not also retried), and dead letters among them leave the dead set. A
  message in flight at that moment stays pending until its attempt ends,
  and is read again meanwhile. With the dry run, nothing is written and the
  answer is the same. Seeking forward (past what the group has read) moves
  nothing.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  KEYS[3] attempts (hash: stream id -> retry state)
  KEYS[4] dead letters (zset: stream id -> dead since ms)
  KEYS[5] leases (hash: stream id -> lease JSON)
  KEYS[6] ranges (zset: JSON record -> receipt ms of the newest message it covers)
  ARGV[1] consumer group (the publisher id)
  ARGV[2] to (ms): messages received at or after it are given again
  ARGV[3] the seek's time (ms), kept in the range record
  ARGV[4] '1' for a dry run (count only), '0' to seek

  Returns: { the group's last-delivered id after (the newest entry received
             before `to`, or 0-0; the same as before when that is not earlier),
             its last-delivered id before,
             retries and leases dropped, dead letters dropped }
           The entries given again are those after the first id up to the
           second. -3 when the stream exists but the group does not
           (nothing written).
]]
local group, dry = ARGV[1], ARGV[4] == '1'
local to = tonumber(ARGV[2])

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
  return { '0-0', '0-0', 0, 0 }
end
local last = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  if info['name'] == group then last = info['last-delivered-id'] end
end
if not last then
  return -3
end
local point = '0-0'
if to > 0 then
  local newest = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[2] .. '-0', '-', 'COUNT', 1)[1]
  if newest then point = newest[1] end
end
if cmp(point, last) >= 0 then
  return { last, last, 0, 0 }
end

local retries = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if cmp(sid, point) > 0 then
    retries = retries + 1
    if not dry then
      redis.call('ZREM', KEYS[2], sid)
      redis.call('HDEL', KEYS[3], sid)
      redis.call('HDEL', KEYS[5], sid)
    end
  end
end
local dead = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if cmp(sid, point) > 0 then
    dead = dead + 1
    if not dry then redis.call('ZREM', KEYS[4], sid) end
  end
end
if not dry then
  redis.call('XGROUP', 'SETID', KEYS[1], group, point)
  local record = cjson.encode({ kind = 'seek', at = ARGV[3], time = ARGV[2], from = point, through = last })
  redis.call('ZADD', KEYS[6], string.match(last, '^(%d+)'), record)
end
return { point, last, retries, dead }
