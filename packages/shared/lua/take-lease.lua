--[[
  Takes a slot's lease when it is free, or when its holder is the one the
  caller saw dead (compare and set: a lease renewed or taken by someone else
  since the caller read it is left alone). Leases carry no TTL: a lease lives
  as long as its holder's heartbeat (see cluster/slot-leases.ts).

  KEYS[1] the slot's lease        po:{t}:p:<id>:lease:<slot>
  ARGV[1] the value the caller read ('' when the key was missing)
  ARGV[2] the caller's value, '<node id> <token>'

  Returns: 1 the caller holds the lease now; 0 someone else does.
]]
local current = redis.call('GET', KEYS[1])
if current == ARGV[2] then
  return 1
end
if (current or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
