--[[
  Counts a stream's entries between two ids, a bounded number per call so
  that a long range never holds Redis for long: call again from where the
  last call stopped until it says it is done. Writes nothing.

  KEYS[1] the topic's stream            po:{t}:stream
  ARGV[1] count entries after this id (exclusive)
  ARGV[2] up to this id (inclusive)
  ARGV[3] most entries to count in this call

  Returns: { entries counted, the last entry counted (count again after it)
             or '' when the range is done }
]]
local budget = tonumber(ARGV[3])
local counted = 0
local from = ARGV[1]
while counted < budget do
  local page = redis.call('XRANGE', KEYS[1], '(' .. from, ARGV[2], 'COUNT', math.min(1000, budget - counted))
  counted = counted + #page
  if #page == 0 then return { counted, '' } end
  from = page[#page][1]
  if from == ARGV[2] then return { counted, '' } end
end
return { counted, from }
