--[[
  Adds one or more messages to a topic's stream and indexes their ids.

  KEYS[1] topic record (hash)           po:{t}:topic
  KEYS[2] the topic's stream            po:{t}:stream
  KEYS[3] message id -> stream id       po:{t}:ids
  KEYS[4] optional: the request's idempotency key   po:{t}:idem:<key>
  ARGV[1] number of messages, n
  ARGV[2..1+3n] n groups of three: message id (UUID), payload JSON,
          attributes JSON ('' when there are none)
  ARGV[2+3n] with KEYS[4]: the answer to keep under the key (text)
  ARGV[3+3n] with KEYS[4]: how long to keep it (seconds)

  Returns: -1 when the topic does not exist (nothing written);
           { '=', kept answer } when KEYS[4] already holds an answer
           (nothing written);
           otherwise the n stream entry ids, in order.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local n = tonumber(ARGV[1])
if KEYS[4] then
  local kept = redis.call('GET', KEYS[4])
  if kept then
    return { '=', kept }
  end
  redis.call('SET', KEYS[4], ARGV[2 + 3 * n], 'EX', tonumber(ARGV[3 + 3 * n]))
end
local streamIds = {}
local index = {}
for i = 0, n - 1 do
  local b = 2 + i * 3
  local sid
  if ARGV[b + 2] == '' then
    sid = redis.call('XADD', KEYS[2], '*', 'id', ARGV[b], 'p', ARGV[b + 1])
  else
    sid = redis.call('XADD', KEYS[2], '*', 'id', ARGV[b], 'p', ARGV[b + 1], 'a', ARGV[b + 2])
  end
  streamIds[i + 1] = sid
  index[#index + 1] = ARGV[b]
  index[#index + 1] = sid
  if #index >= 1000 then
    redis.call('HSET', KEYS[3], unpack(index))
    index = {}
  end
end
if #index > 0 then
  redis.call('HSET', KEYS[3], unpack(index))
end
redis.call('HINCRBY', KEYS[1], 'received', n)
return streamIds
