-- status.lua: one round trip for everything the status route shows. Read-only.
--
-- KEYS[1] sale:{ID}:config, KEYS[2] sale:{ID}:stock
-- Returns nil when the sale does not exist, else
-- {productName, totalStock, remainingStock, startMs, endMs, redisNowMs}.

local start_ms, end_ms, total, name = read_sale(KEYS[1])
if not start_ms then
  return nil
end
local remaining = tonumber(redis.call('GET', KEYS[2])) or 0
return {name, total, remaining, start_ms, end_ms, redis_now_ms()}
