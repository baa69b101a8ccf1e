--[[
  Moves a topic's scheduled messages that are due into its stream, as if
  they had just been received: XADD with the id given at schedule time,
  the id index and the received count. Safe to run from several nodes at
  once: each message is moved by the first call that sees it due.

  KEYS[1] topic record (hash)                     po:{t}:topic
  KEYS[2] the topic's stream                      po:{t}:stream
  KEYS[3] message id -> stream id                 po:{t}:ids
  KEYS[4] scheduled (zset: message id -> due ms)  po:{t}:scheduled
  KEYS[5] scheduled data (hash: message id -> JSON)
  ARGV[1] now (ms)
  ARGV[2] most messages to move in this call

  Returns: { messages moved, earliest due time left (ms) or '' }
]]
local due = redis.call('ZRANGE', KEYS[4], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
local topicExists = redis.call('EXISTS', KEYS[1]) == 1
for _, id in ipairs(due) do
  local raw = redis.call('HGET', KEYS[5], id)
  if raw and topicExists then
    local m = cjson.decode(raw)
    local sid
    if m.a == nil or m.a == '' then
      sid = redis.call('XADD', KEYS[2], '*', 'id', id, 'p', m.p)
    else
      sid = redis.call('XADD', KEYS[2], '*', 'id', id, 'p', m.p, 'a', m.a)
    end
    redis.call('HSET', KEYS[3], id, sid)
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
end
if moved > 0 then
  redis.call('HINCRBY', KEYS[1], 'received', moved)
end
local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
return { moved, first[2] or '' }
