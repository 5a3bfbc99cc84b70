-- restock.lua: adds units to a running sale's stock and total, atomically (admin restock).
--
-- KEYS[1] config, KEYS[2] stock, KEYS[3] restocks (hash: request token -> units)
-- ARGV[1] units, ARGV[2] request token
-- Returns {'NOT_FOUND'} or {'OK', totalStock, remainingStock}. A retry with the same token
-- (Idempotency-Key) adds nothing and answers the same totals.

if not read_sale(KEYS[1]) then
  return {'NOT_FOUND'}
end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'totalStock', ARGV[1])
  redis.call('INCRBY', KEYS[2], ARGV[1])
end
local total = tonumber(redis.call('HGET', KEYS[1], 'totalStock'))
local remaining = tonumber(redis.call('GET', KEYS[2])) or 0
return {'OK', total, remaining}
