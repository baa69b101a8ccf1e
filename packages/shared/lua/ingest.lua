--[[
  Adds one or more messages to a topic's stream, then (when asked) wakes
  consumer nodes with the topic's name. Nothing else is written per
  message: a message's id is its topic and stream entry id.

  KEYS[1] topic record (hash)           po:{t}:topic
  KEYS[2] the topic's stream            po:{t}:stream
  KEYS[3] optional: this hour's per-minute counters   po:{t}:series:<hour> (series.ts)
  KEYS[4] optional, with KEYS[3]: the request's idempotency key   po:{t}:idem:<key>
  ARGV[1] the wake-up channel to publish the topic's name on once written,
          or '' for none (a channel is not a key: nothing is stored there)
  ARGV[2] the topic's name (the wake-up's message)
  ARGV[3] number of messages, n
  ARGV[4..3+2n] n pairs: payload JSON, attributes JSON ('' when there are none)
  ARGV[4+2n] with KEYS[3]: the minute of the hour: n is added to its field
             `<minute>:r` once written
  ARGV[5+2n] with KEYS[3]: the counters' expiry (seconds)
  ARGV[6+2n] with KEYS[4]: the request's fingerprint (route, topic and body)
  ARGV[7+2n] with KEYS[4]: how long to keep the key (seconds)

  The idempotency key holds '<fingerprint> <stream id>,<stream id>,...'. A key written
  before fingerprints holds the first answer as JSON ('{"kind":...,"ids":[...]}'):
  it is given back as it is (that version replayed any request under its key).

  Returns: -1 when the topic does not exist (nothing written);
           -9 when KEYS[4] was used by a different request (nothing written);
           { '=', '<stream id>,...' } when KEYS[4] already holds this
           request's answer (nothing written);
           { '=', '{...}' } when KEYS[4] holds an answer written before fingerprints;
           otherwise the n stream entry ids, in order.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local n = tonumber(ARGV[3])
if KEYS[4] then
  local kept = redis.call('GET', KEYS[4])
  if kept then
    if string.sub(kept, 1, 1) == '{' then
      return { '=', kept }
    end
    local space = string.find(kept, ' ', 1, true)
    if space and string.sub(kept, 1, space - 1) == ARGV[6 + 2 * n] then
      return { '=', string.sub(kept, space + 1) }
    end
    return -9
  end
end
local streamIds = {}
for i = 0, n - 1 do
  local b = 4 + i * 2
  if ARGV[b + 1] == '' then
    streamIds[i + 1] = redis.call('XADD', KEYS[2], '*', 'p', ARGV[b])
  else
    streamIds[i + 1] = redis.call('XADD', KEYS[2], '*', 'p', ARGV[b], 'a', ARGV[b + 1])
  end
end
if KEYS[4] then
  redis.call('SET', KEYS[4], ARGV[6 + 2 * n] .. ' ' .. table.concat(streamIds, ','), 'EX', tonumber(ARGV[7 + 2 * n]))
end
redis.call('HINCRBY', KEYS[1], 'received', n)
if KEYS[3] then
  redis.call('HINCRBY', KEYS[3], ARGV[4 + 2 * n] .. ':r', n)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5 + 2 * n]))
end
if ARGV[1] ~= '' then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return streamIds
