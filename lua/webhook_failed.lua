-- webhook_failed.lua: an attempt to deliver an order failed; count it, and after the last
-- attempt move the order to the dead-letter stream.
--
-- KEYS[1] the stream it came from (orders or orders:retry), KEYS[2] sale:{ID}:orders:attempts,
-- KEYS[3] sale:{ID}:orders:dead
-- ARGV[1] consumer group, ARGV[2] this consumer, ARGV[3] entry id, ARGV[4] its attempts field,
-- ARGV[5] max attempts, ARGV[6] what went wrong, ARGV[7] '1' for a re-driven entry
--
-- Returns the failed attempts so far, 'DEAD' (moved to the dead-letter stream), or 'LOST' when
-- this consumer no longer holds the entry (another instance claimed it, or it was acknowledged).

local group, me, id = ARGV[1], ARGV[2], ARGV[3]
local mine = redis.call('XPENDING', KEYS[1], group, id, id, 1, me)
if #mine == 0 then
  return 'LOST'
end
local attempts = redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
if attempts < tonumber(ARGV[5]) then
  -- Holding the entry again resets its idle time, so no other instance claims it while this
  -- one waits to retry.
  redis.call('XCLAIM', KEYS[1], group, me, 0, id, 'JUSTID')
  return attempts
end

local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
local fields = entry and entry[2] or {}
local dead = {}
local has_event_id = false
for i = 1, #fields, 2 do
  has_event_id = has_event_id or fields[i] == 'eventId'
  dead[#dead + 1] = fields[i]
  dead[#dead + 1] = fields[i + 1]
end
if not has_event_id then
  dead[#dead + 1] = 'eventId'
  dead[#dead + 1] = id
end
dead[#dead + 1] = 'attempts'
dead[#dead + 1] = attempts
dead[#dead + 1] = 'lastError'
dead[#dead + 1] = ARGV[6]
redis.call('XADD', KEYS[3], '*', unpack(dead))
redis.call('XACK', KEYS[1], group, id)
redis.call('HDEL', KEYS[2], ARGV[4])
if ARGV[7] == '1' then
  redis.call('XDEL', KEYS[1], id)
end
return 'DEAD'
