--[[
  A cluster-wide token bucket for one publisher: refills at `per_second`
  tokens a second up to `burst`, on Redis' own clock (nodes' clocks may
  disagree). Takes up to n tokens, or gives n back (tokens taken but not
  used, when there was less to deliver than asked for).

  KEYS[1] the bucket (hash: tokens, ts)   po:{t}:p:<id>:bucket
  ARGV[1] tokens per second (> 0)
  ARGV[2] burst: most tokens kept (>= 1)
  ARGV[3] n > 0 to take up to n tokens, n < 0 to give -n back

  Returns: { tokens granted, ms until the next token when fewer than n were granted (else 0) }
]]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = tokens + (now - ts) * rate / 1000
end
if tokens > burst then
  tokens = burst
end
local granted = 0
if n < 0 then
  tokens = math.min(burst, tokens - n)
else
  granted = math.min(n, math.floor(tokens))
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
-- A full bucket needs no state: let the key go once it would be full again.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
local wait = 0
if n > 0 and granted < n then
  wait = math.max(1, math.ceil((1 - tokens) * 1000 / rate))
end
return { granted, wait }
