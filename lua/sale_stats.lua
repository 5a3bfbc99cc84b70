-- sale_stats.lua: a sale's config and counters in one read (admin GET). Read-only.
--
-- KEYS[1] config, KEYS[2] stock, KEYS[3] buyers, KEYS[4] orders, KEYS[5] refused
-- Returns nil when the sale does not exist, else {productName, totalStock, startMs, endMs,
-- createdMs, remaining, buyers, orders, refused, redisNowMs}.

local start_ms, end_ms, total, name = read_sale(KEYS[1])
if not start_ms then
  return nil
end
return {name, total, start_ms, end_ms, tonumber(redis.call('HGET', KEYS[1], 'createdMs')) or 0,
  tonumber(redis.call('GET', KEYS[2])) or 0, redis.call('HLEN', KEYS[3]),
  redis.call('XLEN', KEYS[4]), tonumber(redis.call('GET', KEYS[5])) or 0, redis_now_ms()}
