--[[
  Settles one lease of a pull publisher, if the token is still the current,
  unexpired lease of its message: complete, retry later, fail for good,
  extend, or replace (complete and keep the replacement messages in the
  topic's outbox, from where they are moved to their topics). The lease's
  end is added to the attempt log (one record, built by the caller from
  the lease it read); a dead letter and a replacement get a note. Nothing
  is written unless the lease is valid.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due or lease end, ms)
  KEYS[3] attempts (hash: stream id -> leases so far)
  KEYS[4] dead letters (zset: stream id -> dead since ms)
  KEYS[5] leases (hash: stream id -> current lease JSON)
  KEYS[6] the attempt log (zset)
  KEYS[7] notes (hash: stream id -> JSON note)
  KEYS[8] the topic's outbox (hash: outbox id -> messages JSON)
  KEYS[9] (optional) counters (hash: `delivered` counts completed and replaced leases)
  KEYS[10] (optional, with KEYS[9]) this hour's per-minute counters of the
           topic (hash po:{t}:series:<hour>, see series.ts)
  ARGV[1] consumer group (the publisher id)
  ARGV[2] stream id
  ARGV[3] token
  ARGV[4] now (ms)
  ARGV[5] action: 'complete', 'retry', 'fail', 'extend' or 'replace'
  ARGV[6] 'retry': due (ms); 'extend': new lease end (ms); 'replace': the
          outbox id; '' otherwise
  ARGV[7] 'replace': the outbox JSON; '' otherwise
  ARGV[8] the note to keep ('fail', 'replace'), '' for none
  ARGV[9] the attempt log record's score, or '' for no record ('extend')
  ARGV[10] the attempt log record
  ARGV[11] with KEYS[10]: the minute of the hour; ARGV[12]: its expiry (s).
           'complete' and 'replace' add 1 to `<minute>:d:<group>`, 'retry'
           and 'fail' to `<minute>:f:<group>`

  Returns: the lease end (ms) for 'extend', 1 otherwise;
           -6 when the token is not the current, unexpired lease (nothing written).
]]
local group, sid, token = ARGV[1], ARGV[2], ARGV[3]
local now, action = tonumber(ARGV[4]), ARGV[5]
local raw = redis.call('HGET', KEYS[5], sid)
if not raw then
  return -6
end
local lease = cjson.decode(raw)
if lease.token ~= token or tonumber(lease.expires_at) <= now then
  return -6
end

-- The informational writes first: should one fail, nothing else is written.
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[7], sid, ARGV[8])
end
if ARGV[9] ~= '' then
  redis.call('ZADD', KEYS[6], ARGV[9], ARGV[10])
end

local result = 1
if action == 'extend' then
  lease.expires_at = tonumber(ARGV[6])
  redis.call('HSET', KEYS[5], sid, cjson.encode(lease))
  redis.call('ZADD', KEYS[2], lease.expires_at, sid)
  result = lease.expires_at
elseif action == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[6], sid)
  redis.call('HDEL', KEYS[5], sid)
else
  redis.call('XACK', KEYS[1], group, sid)
  redis.call('ZREM', KEYS[2], sid)
  redis.call('HDEL', KEYS[3], sid)
  redis.call('HDEL', KEYS[5], sid)
  if action == 'fail' then
    redis.call('ZADD', KEYS[4], now, sid)
  elseif action == 'replace' then
    redis.call('HSET', KEYS[8], ARGV[6], ARGV[7])
  end
end
if KEYS[9] and action ~= 'extend' then
  local kind = 'f'
  if action == 'complete' or action == 'replace' then
    kind = 'd'
    redis.call('HINCRBY', KEYS[9], 'delivered', 1)
  end
  if KEYS[10] then
    redis.call('HINCRBY', KEYS[10], ARGV[11] .. ':' .. kind .. ':' .. group, 1)
    redis.call('EXPIRE', KEYS[10], tonumber(ARGV[12]))
  end
end
return result
