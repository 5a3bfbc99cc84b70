-- sweep.lua: releases a checkout sale's expired holds, at most ARGV[2] of them (every instance
-- runs it about once a second per sale with holds; README, Checkout).
--
-- KEYS[1] config, KEYS[2] checkouts, KEYS[3] expiries, KEYS[4] orders (stream)
-- ARGV[1] saleId, ARGV[2] the most holds to release
-- Returns {units released, holds still due}. Instances sweeping at once never release a hold
-- twice: each release checks the order's state, and Redis runs one script at a time.

local start_ms, _, _, _, _, _, order_seq = read_sale(KEYS[1])
if not (start_ms and order_seq) then
  return {0, 0}
end
local co = checkout_lib()
local k = co.checkout_keys(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local now_ms = redis_now_ms()
local units = co.release_expired(k, now_ms, ARGV[1], tonumber(ARGV[2]))
return {units, redis.call('ZCOUNT', k.expiries, '-inf', int_text(now_ms))}
