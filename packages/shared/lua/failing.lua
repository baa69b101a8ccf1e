--[[
  Acts on a publisher's failing messages (retrying or dead): retry them at
  a given time (now: "retry now"; later: "set the next attempt"), recover
  dead letters since a time (back into the retry set, due at once), or
  delete them (acknowledged for this publisher, never delivered).
  A retried dead letter leaves the dead set and waits in the retry set, as
  a retrying message does. Entries whose message is gone from the stream
  are dropped (and acknowledged).

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] message id -> stream id       po:{t}:ids
  KEYS[3] retries (zset: stream id -> due ms)
  KEYS[4] attempts (hash: stream id -> attempts so far)
  KEYS[5] dead letters (zset: stream id -> dead since ms)
  ARGV[1] action: 'retry', 'recover' or 'delete'
  ARGV[2] consumer group (the publisher id)
  ARGV[3] 'retry': the new due time (ms); 'recover': since (ms), dead
          letters that died at or after it; 'delete': ignored
  ARGV[4] selection: 'ids' (ARGV[7..]) or 'all'
  ARGV[5] most entries to act on in this call ('all' and 'recover')
  ARGV[6] now (ms): with 'retry' and 'all', retries due later than now
          are moved (those already due are left as they are)
  ARGV[7..] message ids (UUID), with 'ids'

  Returns: { 1 when more could be acted on (call again) or 0,
             { {message id, 'retrying' or 'dead'}, ... } acted on,
             { message id, ... } given but neither retrying nor dead }
]]
local action, group, score, selection = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max = tonumber(ARGV[5])
local candidates = {}
local missing = {}
local more = 0

local function collect(list, state)
  for _, sid in ipairs(list) do
    candidates[#candidates + 1] = { sid, state, nil }
  end
end

if selection == 'ids' then
  for i = 7, #ARGV do
    local id = ARGV[i]
    local sid = redis.call('HGET', KEYS[2], id)
    local state = nil
    if sid then
      if redis.call('ZSCORE', KEYS[3], sid) then
        state = 'retrying'
      elseif redis.call('ZSCORE', KEYS[5], sid) then
        state = 'dead'
      end
    end
    if state then
      candidates[#candidates + 1] = { sid, state, id }
    else
      missing[#missing + 1] = id
    end
  end
elseif action == 'recover' then
  collect(redis.call('ZRANGE', KEYS[5], score, '+inf', 'BYSCORE', 'LIMIT', 0, max), 'dead')
  if #candidates == max then more = 1 end
else
  if action == 'retry' then
    collect(redis.call('ZRANGE', KEYS[3], '(' .. ARGV[6], '+inf', 'BYSCORE', 'LIMIT', 0, max), 'retrying')
  else
    collect(redis.call('ZRANGE', KEYS[3], 0, max - 1), 'retrying')
  end
  if #candidates < max then
    collect(redis.call('ZRANGE', KEYS[5], 0, max - 1 - #candidates), 'dead')
  end
  if #candidates == max then more = 1 end
end

local done = {}
for _, c in ipairs(candidates) do
  local sid, state, id = c[1], c[2], c[3]
  local entry = redis.call('XRANGE', KEYS[1], sid, sid)
  if #entry == 0 then
    redis.call('ZREM', KEYS[3], sid)
    redis.call('ZREM', KEYS[5], sid)
    redis.call('HDEL', KEYS[4], sid)
    redis.call('XACK', KEYS[1], group, sid)
    if id then missing[#missing + 1] = id end
  else
    if not id then
      local f = entry[1][2]
      for i = 1, #f, 2 do
        if f[i] == 'id' then
          id = f[i + 1]
          break
        end
      end
    end
    if action == 'delete' then
      redis.call('ZREM', KEYS[3], sid)
      redis.call('ZREM', KEYS[5], sid)
      redis.call('HDEL', KEYS[4], sid)
      redis.call('XACK', KEYS[1], group, sid)
    else
      local due = score
      if action == 'recover' then due = ARGV[6] end
      redis.call('ZREM', KEYS[5], sid)
      redis.call('ZADD', KEYS[3], due, sid)
    end
    done[#done + 1] = { id or '', state }
  end
end
return { more, done, missing }
