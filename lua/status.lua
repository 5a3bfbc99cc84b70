-- status.lua: one round trip for everything GET /api/sale/status shows. Read-only.
--
-- KEYS[1] sale:{ID}:config, KEYS[2] sale:{ID}:stock
-- Returns nil when the sale does not exist, else
-- {productName, totalStock, remainingStock, startMs, endMs, redisNowMs}.

local cfg = redis.call('HMGET', KEYS[1], 'productName', 'totalStock', 'startMs', 'endMs')
if not cfg[2] then
  return nil
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local remaining = tonumber(redis.call('GET', KEYS[2])) or 0
return {cfg[1] or '', tonumber(cfg[2]), remaining, tonumber(cfg[3]), tonumber(cfg[4]), now_ms}
