-- upgrade_sale.lua: moves a sale stored by an earlier build to this layout, once, atomically.
-- Earlier builds kept the remaining stock in sale:{ID}:stock and every buyer in the one hash
-- sale:{ID}:buyers; this one keeps `sold` in the config and buyers in buckets (prelude).
--
-- KEYS[1] config, KEYS[2] buyers (the old hash; now the prefix of the buckets), KEYS[3] the old
-- stock key, KEYS[4] bucket 0 (sale:{ID}:buyers:0)
-- Returns 1 when it upgraded the sale, 0 when there was nothing to do.

if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'buyerBuckets') == 1 then
  return 0
end
local sold = redis.call('HLEN', KEYS[2])
-- The old stock counter is what bounded sales so far: keep exactly that many units to sell.
local remaining = tonumber(redis.call('GET', KEYS[3]))
if remaining then
  redis.call('HSET', KEYS[1], 'totalStock', sold + remaining)
end
-- One bucket: the old hash, renamed (O(1)); later buyers of this sale join it.
if sold > 0 then
  redis.call('RENAME', KEYS[2], KEYS[4])
end
redis.call('HSET', KEYS[1], 'sold', sold, 'buyerBuckets', 1)
redis.call('DEL', KEYS[3])
return 1
