--[[
  Finds the attempts of one message in the attempt logs of its topic's
  publishers: every record scored from the message's receipt time minus
  the record span to its receipt time, and in each the items that name
  the message (see attempt-record.ts).

  KEYS[1..n] the attempt log of each publisher   po:{t}:p:<id>:log
  ARGV[1] the message's receipt time (ms, the stream id's first part)
  ARGV[2] the stream id's sequence part
  ARGV[3] the record span (ms)

  Returns: n lists, one per key, each flat: score, record header, item, score, header, item, ...
]]
local ms = tonumber(ARGV[1])
local out = {}
for k = 1, #KEYS do
  local found = {}
  local records = redis.call('ZRANGE', KEYS[k], ms - tonumber(ARGV[3]), ms, 'BYSCORE', 'WITHSCORES')
  for j = 1, #records, 2 do
    local member = records[j]
    local score = tonumber(records[j + 1])
    local needle = ';' .. string.format('%d', ms - score) .. '-' .. ARGV[2] .. ':'
    local from = 1
    local header = nil
    while true do
      local s = string.find(member, needle, from, true)
      if not s then
        break
      end
      local e = string.find(member, ';', s + 1, true)
      if not header then
        header = string.sub(member, 1, string.find(member, ';', 1, true) - 1)
      end
      found[#found + 1] = records[j + 1]
      found[#found + 1] = header
      found[#found + 1] = string.sub(member, s + 1, (e or (#member + 1)) - 1)
      from = s + 1
    end
  end
  out[k] = found
end
return out
