-- status.lua: one round trip for everything the status route shows. Read-only.
--
-- KEYS[1] sale:{ID}:config
-- Returns nil when the sale does not exist, else
-- {productName, totalStock, remainingStock, startMs, endMs, redisNowMs, heldStock}.

local start_ms, end_ms, total, name, sold, _, _, held = read_sale(KEYS[1])
if not start_ms then
  return nil
end
return {name, total, total - sold, start_ms, end_ms, redis_now_ms(), held}
