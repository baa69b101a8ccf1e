--[[
  Acts on a publisher's failing messages (retrying or dead): retry them at
  a given time (now: "retry now"; later: "set the next attempt"), recover
  dead letters since a time (back into the retry set, due at once), or
  delete them (acknowledged for this publisher, never delivered). Each
  message acted on gets a note of the action (notes hash), which the
  message's page shows; a deleted one keeps its note as its state.
  A retried dead letter leaves the dead set and waits in the retry set, as
  a retrying message does. Entries whose message is gone from the stream
  are dropped (and acknowledged).

  KEYS[1] the topic's stream            po:{t}:stream
  KEYS[2] retries (zset: stream id -> due ms)
  KEYS[3] attempts (hash: stream id -> retry state)
  KEYS[4] dead letters (zset: stream id -> dead since ms)
  KEYS[5] notes (hash: stream id -> JSON note)
  KEYS[6] (optional) counters (hash): `deleted` counts the messages deleted
  ARGV[1] action: 'retry', 'recover' or 'delete'
  ARGV[2] consumer group (the publisher id)
  ARGV[3] 'retry': the new due time (ms); 'recover': since (ms), dead
          letters that died at or after it; 'delete': ignored
  ARGV[4] selection: 'ids' (ARGV[9..]) or 'all'
  ARGV[5] most entries to act on in this call ('all' and 'recover')
  ARGV[6] now (ms): with 'retry' and 'all', retries due later than now
          are moved (those already due are left as they are)
  ARGV[7] the note's action: 'retry_now', 'rescheduled', 'recovered' or 'deleted'
  ARGV[8] the action's ISO time
  ARGV[9..] stream ids, with 'ids'

  Returns: { 1 when more could be acted on (call again) or 0,
             { {stream id, 'retrying' or 'dead', the entry's id field or ''}, ... } acted on,
             { stream id, ... } given but neither retrying nor dead }
]]
local action, group, score, selection = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max = tonumber(ARGV[5])
local candidates = {}
local missing = {}
local more = 0

local function collect(list, state)
  for _, sid in ipairs(list) do
    candidates[#candidates + 1] = { sid, state }
  end
end

if selection == 'ids' then
  for i = 9, #ARGV do
    local sid = ARGV[i]
    local state = nil
    if redis.call('ZSCORE', KEYS[2], sid) then
      state = 'retrying'
    elseif redis.call('ZSCORE', KEYS[4], sid) then
      state = 'dead'
    end
    if state then
      candidates[#candidates + 1] = { sid, state }
    else
      missing[#missing + 1] = sid
    end
  end
elseif action == 'recover' then
  collect(redis.call('ZRANGE', KEYS[4], score, '+inf', 'BYSCORE', 'LIMIT', 0, max), 'dead')
  if #candidates == max then more = 1 end
else
  if action == 'retry' then
    collect(redis.call('ZRANGE', KEYS[2], '(' .. ARGV[6], '+inf', 'BYSCORE', 'LIMIT', 0, max), 'retrying')
  else
    collect(redis.call('ZRANGE', KEYS[2], 0, max - 1), 'retrying')
  end
  if #candidates < max then
    collect(redis.call('ZRANGE', KEYS[4], 0, max - 1 - #candidates), 'dead')
  end
  if #candidates == max then more = 1 end
end

local function note(sid, deleted)
  local raw = redis.call('HGET', KEYS[5], sid)
  local n = {}
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then n = decoded end
  end
  n.last_action = { action = ARGV[7], at = ARGV[8] }
  if deleted then
    n.deleted = true
  else
    n.dead_reason = nil
  end
  redis.call('HSET', KEYS[5], sid, cjson.encode(n))
end

local done = {}
for _, c in ipairs(candidates) do
  local sid, state = c[1], c[2]
  local entry = redis.call('XRANGE', KEYS[1], sid, sid)
  if #entry == 0 then
    redis.call('ZREM', KEYS[2], sid)
    redis.call('ZREM', KEYS[4], sid)
    redis.call('HDEL', KEYS[3], sid)
    redis.call('HDEL', KEYS[5], sid)
    redis.call('XACK', KEYS[1], group, sid)
    if selection == 'ids' then missing[#missing + 1] = sid end
  else
    if action == 'delete' then
      redis.call('ZREM', KEYS[2], sid)
      redis.call('ZREM', KEYS[4], sid)
      redis.call('HDEL', KEYS[3], sid)
      redis.call('XACK', KEYS[1], group, sid)
      note(sid, true)
      if KEYS[6] then
        redis.call('HINCRBY', KEYS[6], 'deleted', 1)
      end
    else
      local due = score
      if action == 'recover' then due = ARGV[6] end
      redis.call('ZREM', KEYS[4], sid)
      redis.call('ZADD', KEYS[2], due, sid)
      note(sid, false)
    end
    local stored = ''
    local f = entry[1][2]
    for k = 1, #f, 2 do
      if f[k] == 'id' then
        stored = f[k + 1]
        break
      end
    end
    done[#done + 1] = { sid, state, stored }
  end
end
return { more, done, missing }
