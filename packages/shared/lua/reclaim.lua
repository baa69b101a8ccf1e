--[[
  Takes over the pending entries of a consumer that left or died: each is
  claimed by the 'reclaimed' consumer and scheduled for a new attempt now,
  unless it already waits in the retry set. When the consumer has nothing
  pending left, it is deleted from the group.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  ARGV[1] consumer group (publisher id)
  ARGV[2] the consumer that left
  ARGV[3] the consumer that takes the entries over
  ARGV[4] now (ms)
  ARGV[5] most entries to move in this call

  Returns: { entries newly scheduled, 1 when the consumer is gone (done) or 0 (call again) }
           Taking over from the taking consumer itself does nothing and is
           done at once (deleting it would drop its pending entries).
]]
if redis.call('EXISTS', KEYS[1]) == 0 or ARGV[2] == ARGV[3] then
  return { 0, 1 }
end
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[5]), ARGV[2])
if not ok then
  return { 0, 1 }
end
local moved = 0
for _, p in ipairs(pending) do
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, p[1], 'JUSTID')
  moved = moved + redis.call('ZADD', KEYS[2], 'NX', ARGV[4], p[1])
end
if #pending < tonumber(ARGV[5]) then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return { moved, 1 }
end
return { moved, 0 }
