-- webhook_redrive.lua: sends dead orders back for delivery (admin re-drive). Atomic: each entry
-- leaves the dead-letter stream in the same step that queues it again.
--
-- KEYS[1] sale:{ID}:orders:dead, KEYS[2] sale:{ID}:orders:retry
-- ARGV[1] consumer group, ARGV[2] how many at most
-- Returns {re-driven, still dead}. A re-driven order keeps its eventId (receivers dedupe on it)
-- and starts again from its first attempt.

local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])
if #entries == 0 then
  return {0, 0}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[1], '0', 'MKSTREAM')
end
for _, entry in ipairs(entries) do
  local fields = {}
  local raw = entry[2]
  for i = 1, #raw, 2 do
    if raw[i] ~= 'attempts' and raw[i] ~= 'lastError' then
      fields[#fields + 1] = raw[i]
      fields[#fields + 1] = raw[i + 1]
    end
  end
  redis.call('XADD', KEYS[2], '*', unpack(fields))
  redis.call('XDEL', KEYS[1], entry[1])
end
return {#entries, redis.call('XLEN', KEYS[1])}
