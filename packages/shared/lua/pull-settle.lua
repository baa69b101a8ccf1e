--[[
  Settles one lease of a pull publisher, if the token is still the current,
  unexpired lease of its message: complete, retry later, fail for good,
  extend, or replace (complete and keep the replacement messages in the
  topic's outbox, from where they are moved to their topics). The message's
  history records the outcome. Nothing is written unless the lease is valid.

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due or lease end, ms)
  KEYS[3] attempts (hash: stream id -> leases so far)
  KEYS[4] dead letters (zset: stream id -> received ms)
  KEYS[5] leases (hash: stream id -> current lease JSON)
  KEYS[6] the message's history hash    po:{t}:h:<message id>
  KEYS[7] the topic's outbox (hash: outbox id -> messages JSON)
  ARGV[1] consumer group (the publisher id, also the history field)
  ARGV[2] stream id
  ARGV[3] token
  ARGV[4] now (ms)
  ARGV[5] action: 'complete', 'retry', 'fail', 'extend' or 'replace'
  ARGV[6] 'retry': due (ms); 'extend': new lease end (ms); 'fail': received (ms);
          'replace': the outbox id; '' otherwise
  ARGV[7] 'retry', 'fail': reason; 'replace': the outbox JSON; '' otherwise
  ARGV[8] 'replace': JSON list of the replacement message ids; 'retry': the due
          time as ISO text (for the history); '' otherwise
  ARGV[9] history TTL (seconds)
  ARGV[10] most attempts kept per history

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

local hraw = redis.call('HGET', KEYS[6], group)
local rec
if hraw then
  rec = cjson.decode(hraw)
else
  rec = { attempts = {}, attempt_count = 0 }
end
local attempt = nil
for i = #rec.attempts, 1, -1 do
  if rec.attempts[i].token == token then
    attempt = rec.attempts[i]
    break
  end
end
if not attempt then
  -- the lease's own record was not written (or was dropped): start one
  attempt = { token = token, worker = lease.worker, at = lease.leased_at, outcome = 'leased' }
  rec.attempts[#rec.attempts + 1] = attempt
  while #rec.attempts > tonumber(ARGV[10]) do
    table.remove(rec.attempts, 1)
  end
  rec.attempt_count = math.max(rec.attempt_count or 0, tonumber(lease.attempt) or 1)
end
attempt.ended_at = now
attempt.duration_ms = now - tonumber(lease.leased_at)
rec.next_attempt_at = nil
rec.dead_reason = nil

local result = 1
if action == 'extend' then
  lease.expires_at = tonumber(ARGV[6])
  redis.call('HSET', KEYS[5], sid, cjson.encode(lease))
  redis.call('ZADD', KEYS[2], lease.expires_at, sid)
  attempt.ended_at = nil
  attempt.duration_ms = nil
  attempt.lease_expires_at = lease.expires_at
  rec.state = 'leased'
  result = lease.expires_at
elseif action == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[6], sid)
  redis.call('HDEL', KEYS[5], sid)
  attempt.outcome = 'retry'
  if ARGV[7] ~= '' then
    attempt.error = ARGV[7]
  end
  rec.state = 'retrying'
  rec.next_attempt_at = ARGV[8]
else
  redis.call('XACK', KEYS[1], group, sid)
  redis.call('ZREM', KEYS[2], sid)
  redis.call('HDEL', KEYS[3], sid)
  redis.call('HDEL', KEYS[5], sid)
  if action == 'fail' then
    redis.call('ZADD', KEYS[4], ARGV[6], sid)
    attempt.outcome = 'failed'
    attempt.error = ARGV[7]
    rec.state = 'dead'
    rec.dead_reason = ARGV[7]
  elseif action == 'replace' then
    redis.call('HSET', KEYS[7], ARGV[6], ARGV[7])
    attempt.outcome = 'replaced'
    rec.state = 'delivered'
    rec.replaced_by = cjson.decode(ARGV[8])
  else
    attempt.outcome = 'completed'
    rec.state = 'delivered'
  end
end
redis.call('HSET', KEYS[6], group, cjson.encode(rec))
redis.call('EXPIRE', KEYS[6], tonumber(ARGV[9]))
return result
