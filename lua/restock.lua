-- restock.lua: adds units to a running sale's stock and total, atomically (admin restock).
--
-- KEYS[1] config, KEYS[2] restocks (hash: request token -> units)
-- ARGV[1] units, ARGV[2] request token
-- Returns {'NOT_FOUND'} or {'OK', totalStock, remainingStock}. A retry with the same token
-- (Idempotency-Key) adds nothing and answers the same totals.

local start_ms, _, total, _, sold = read_sale(KEYS[1])
if not start_ms then
  return {'NOT_FOUND'}
end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 1 then
  total = redis.call('HINCRBY', KEYS[1], 'totalStock', ARGV[1])
end
return {'OK', total, total - sold}
