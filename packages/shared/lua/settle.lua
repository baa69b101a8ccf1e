--[[
  Records the outcomes of a batch of deliveries of one publisher in one
  round trip. A delivered message costs its share of one variadic XACK and
  of the batch's attempt records; only retries and dead letters write
  anything per message.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  KEYS[3] attempts (hash: stream id -> retry state)
  KEYS[4] dead letters (zset: stream id -> dead since ms)
  KEYS[5] the attempt log (zset: record -> receipt ms of its oldest message)
  KEYS[6] notes (hash: stream id -> JSON note)
  KEYS[7] (optional) counters (hash: skipped, deleted, delivered)
  KEYS[8] (optional, with KEYS[7]) this hour's per-minute counters of the
          topic (hash po:{t}:series:<hour>, see series.ts)
  ARGV[1] consumer group (the publisher id)
  ARGV[2] a record of the log that the first of the records below replaces
          (it holds that record's attempts and more), or ''
  ARGV[3] r, then r pairs: record score, record text (attempt-record.ts)
  then a, then a stream ids to acknowledge (delivered and dead)
  then c, then c stream ids that leave the retry set (delivered or dead after a retry)
  then t, then t triples: stream id, due ms, retry state (scheduled for a retry)
  then x, then x triples: stream id, dead since ms, note JSON (dead letters)
  then (optional, with KEYS[7]) s: how many of the acknowledged were skipped
  (not sent: the publisher's filter did not match), added to the `skipped` counter
  then (optional, with KEYS[8]) d, f, minute, ttl: the batch's delivered
  messages and failed attempts (retry or dead), added to the `delivered`
  counter of KEYS[7] and to the fields `<minute>:d:<group>` and
  `<minute>:f:<group>` of KEYS[8], which then expires in ttl seconds

  An outcome to record as a retry or a dead letter for an entry the group
  no longer has pending (purged, or deleted from the failing list, while
  its attempt was in flight) writes neither: that message is done with.

  Returns: the number of entries acknowledged.
]]
local i = 3
local function count()
  local n = tonumber(ARGV[i])
  i = i + 1
  return n
end
local r = count()
if ARGV[2] ~= '' then
  redis.call('ZREM', KEYS[5], ARGV[2])
end
if r > 0 then
  local args = {}
  for k = 1, 2 * r do
    args[k] = ARGV[i + k - 1]
  end
  redis.call('ZADD', KEYS[5], unpack(args))
  i = i + 2 * r
end
-- Retries and dead letters only for entries still pending (checked before the XACK below).
local gone = {}
do
  local j = i + 1 + tonumber(ARGV[i])
  j = j + 1 + tonumber(ARGV[j])
  local t, x = tonumber(ARGV[j]), tonumber(ARGV[j + 1 + 3 * tonumber(ARGV[j])])
  local function check(at)
    if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[at], ARGV[at], 1) == 0 then gone[ARGV[at]] = true end
  end
  for k = 0, t - 1 do check(j + 1 + 3 * k) end
  j = j + 1 + 3 * t
  for k = 0, x - 1 do check(j + 1 + 3 * k) end
end
local a = count()
local acked = 0
if a > 0 then
  acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, i + a - 1))
  i = i + a
end
local c = count()
if c > 0 then
  redis.call('ZREM', KEYS[2], unpack(ARGV, i, i + c - 1))
  redis.call('HDEL', KEYS[3], unpack(ARGV, i, i + c - 1))
  i = i + c
end
local t = count()
for k = 0, t - 1 do
  local b = i + 3 * k
  if not gone[ARGV[b]] then
    redis.call('ZADD', KEYS[2], ARGV[b + 1], ARGV[b])
    redis.call('HSET', KEYS[3], ARGV[b], ARGV[b + 2])
  end
end
i = i + 3 * t
local x = count()
for k = 0, x - 1 do
  local b = i + 3 * k
  if not gone[ARGV[b]] then
    redis.call('ZADD', KEYS[4], ARGV[b + 1], ARGV[b])
    redis.call('HSET', KEYS[6], ARGV[b], ARGV[b + 2])
  end
end
i = i + 3 * x
local s = tonumber(ARGV[i])
if KEYS[7] and s and s > 0 then
  redis.call('HINCRBY', KEYS[7], 'skipped', s)
end
if KEYS[8] then
  local d, f, minute = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  if d > 0 then
    redis.call('HINCRBY', KEYS[7], 'delivered', d)
    redis.call('HINCRBY', KEYS[8], minute .. ':d:' .. ARGV[1], d)
  end
  if f > 0 then
    redis.call('HINCRBY', KEYS[8], minute .. ':f:' .. ARGV[1], f)
  end
  if d > 0 or f > 0 then
    redis.call('EXPIRE', KEYS[8], tonumber(ARGV[i + 4]))
  end
end
return acked
