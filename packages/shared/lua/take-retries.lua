--[[
  Takes a publisher's retries that are due and leases them: each taken
  entry's score moves to the lease end, so that if the node dies mid-way the
  entry comes due again by itself. Entries whose message was trimmed are
  dropped.

  KEYS[1] the topic's stream         po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  KEYS[3] attempts (hash: stream id -> retry state: '<count>|...' or a bare count)
  ARGV[1] now (ms)
  ARGV[2] lease end (ms)
  ARGV[3] most entries to take
  ARGV[4] '1' to take the earliest entries even if not due (a circuit
          breaker's probe), '0' otherwise

  Returns: { earliest score left in the set after the lease, or '',
             { {stream id, retry state or '0', {field, value, ...}}, ... } }
]]
local taken
if ARGV[4] == '1' then
  taken = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1)
else
  taken = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
end
local out = {}
for _, sid in ipairs(taken) do
  local entry = redis.call('XRANGE', KEYS[1], sid, sid)
  if #entry == 0 then
    redis.call('ZREM', KEYS[2], sid)
    redis.call('HDEL', KEYS[3], sid)
  else
    redis.call('ZADD', KEYS[2], ARGV[2], sid)
    out[#out + 1] = { sid, redis.call('HGET', KEYS[3], sid) or '0', entry[1][2] }
  end
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { first[2] or '', out }
