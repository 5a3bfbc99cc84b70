-- sale_stats.lua: a sale's config and counters in one read (admin GET). Read-only.
--
-- KEYS[1] config, KEYS[2] orders, KEYS[3] refused
-- Returns nil when the sale does not exist, else {productName, totalStock, startMs, endMs,
-- createdMs, remaining, buyers, orders, refused, redisNowMs}. Buyers are the units sold: a
-- purchase records its buyer and counts its unit in one script.

local start_ms, end_ms, total, name, sold = read_sale(KEYS[1])
if not start_ms then
  return nil
end
return {name, total, start_ms, end_ms, tonumber(redis.call('HGET', KEYS[1], 'createdMs')) or 0,
  total - sold, sold, redis.call('XLEN', KEYS[2]), tonumber(redis.call('GET', KEYS[3])) or 0,
  redis_now_ms()}
