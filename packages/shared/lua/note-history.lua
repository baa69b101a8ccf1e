--[[
  Records an operator's action (retry now, new next attempt, recovery,
  deletion) in the delivery history of messages for one publisher. Only
  records that exist and are not 'delivered' are changed: a consumer node
  may have delivered the message between the action and this note.

  KEYS[1] .. KEYS[n] the history hash of each message   po:{t}:h:<message id>
  ARGV[1] the publisher id (the history field)
  ARGV[2] history TTL (seconds)
  ARGV[3] the new state: 'retrying' or 'deleted'
  ARGV[4] next attempt ISO time ('' for none)
  ARGV[5] the action: 'retry_now', 'rescheduled', 'recovered' or 'deleted'
  ARGV[6] the action's ISO time

  Returns: the number of records changed.
]]
local changed = 0
for i = 1, #KEYS do
  local raw = redis.call('HGET', KEYS[i], ARGV[1])
  local rec = raw and cjson.decode(raw)
  if rec and rec.state ~= 'delivered' then
    rec.state = ARGV[3]
    if ARGV[4] == '' then
      rec.next_attempt_at = nil
    else
      rec.next_attempt_at = ARGV[4]
    end
    rec.dead_reason = nil
    rec.last_action = { action = ARGV[5], at = ARGV[6] }
    redis.call('HSET', KEYS[i], ARGV[1], cjson.encode(rec))
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2]))
    changed = changed + 1
  end
end
return changed
