-- status.lua: one round trip for everything the status route shows. Read-only.
--
-- KEYS[1] sale:{ID}:config, KEYS[2] sale:{ID}:room
-- Returns nil when the sale does not exist, else
-- {productName, totalStock, remainingStock, startMs, endMs, redisNowMs, heldStock}, and with the
-- waiting room on also its fields (prelude: room_reply; the draw's seed only once the sale has
-- started, on Redis's clock).

local start_ms, end_ms, total, name, sold, _, _, held, rate = read_sale(KEYS[1])
if not start_ms then
  return nil
end
local now_ms = redis_now_ms()
local reply = {name, total, total - sold, start_ms, end_ms, now_ms, held}
if rate and rate > 0 then
  local rooms = room_lib()
  for _, field in ipairs(rooms.room_reply(rooms.read_room(KEYS[2]), now_ms, start_ms)) do
    reply[#reply + 1] = field
  end
end
return reply
