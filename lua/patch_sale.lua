-- patch_sale.lua: changes a sale's name or window, never its stock or buyers (admin PATCH).
--
-- KEYS[1] config, KEYS[2] room; ARGV[1] productName or '', ARGV[2] startMs or '', ARGV[3] endMs or '',
-- ARGV[4] 1 when an endMs of "now" should close the sale at Redis's clock, ARGV[5] holdMs or '',
-- ARGV[6] maxPerBuyer or '' (held orders keep their expiry and their quantity), ARGV[7] '' to
-- leave the waiting room as it is, else admitPerSecond (0 = off), with ARGV[8] admitMs,
-- ARGV[9] opensMs, ARGV[10] a fresh draw seed and ARGV[11] its commitment (used only if the
-- sale has no draw yet). Returns 'ROOM_AFTER_END' (nothing written) when the room's opening
-- would not come before the sale's end.
-- Returns 'NOT_FOUND', 'BAD_WINDOW' (end not after start; nothing written) or 'OK'.
-- Closing records the close on Redis's clock (the end becomes Redis's now, whatever past time
-- was asked) and never moves the start: closing a sale that has
-- not started yet is a BAD_WINDOW like any other end not after the start.

local start_ms, end_ms = read_sale(KEYS[1])
if not start_ms then
  return 'NOT_FOUND'
end
local new_start = tonumber(ARGV[2]) or start_ms
local new_end = tonumber(ARGV[3]) or end_ms
if ARGV[4] == '1' then
  new_end = redis_now_ms()
end
if new_end <= new_start then
  return 'BAD_WINDOW'
end
if ARGV[7] ~= '' and tonumber(ARGV[7]) > 0 and tonumber(ARGV[9]) >= new_end then
  return 'ROOM_AFTER_END'
end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'productName', ARGV[1])
end
redis.call('HSET', KEYS[1], 'startMs', new_start, 'endMs', new_end)
if ARGV[5] ~= '' or ARGV[6] ~= '' then
  local co = checkout_lib()
  local hold_ms, max_per_buyer = co.read_checkout(KEYS[1])
  co.write_checkout(KEYS[1], ARGV[5] ~= '' and ARGV[5] or hold_ms,
    ARGV[6] ~= '' and ARGV[6] or max_per_buyer)
end
if ARGV[7] ~= '' then
  room_lib().write_room(KEYS[1], KEYS[2], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
end
return 'OK'
