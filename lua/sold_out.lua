-- sold_out.lua: refuses a batch of purchases of a sale whose stock is gone, cheaply, each
-- exactly as lua/purchase.lua would refuse it, and passes on (answers 'DECIDE' for) any
-- purchase it cannot refuse so: one whose user has a buyer record (a buyer is always answered
-- with what they hold), an admission that has run out, more units than a buyer may have. An
-- instance calls it instead of purchase.lua for a sale whose last batch was refused for want of
-- stock (src/store/purchase.rs); it reads the sale as it is now, so the next call after a
-- restock, a released hold or a reopened window sends every purchase to purchase.lua again.
--
-- A refusal here costs a fraction of a purchase: no request token, request id or reservation
-- secret is passed, no clock text is made, nothing but the buyer's bucket and attempt counter is
-- touched per purchase.
--
-- KEYS[1] sale:{ID}:config, KEYS[2] sale:{ID}:refused, KEYS[3] sale:{ID}:expiries; then for
-- the i-th purchase KEYS[2 + 2i] its buyer bucket and KEYS[3 + 2i] its attempt counter, as
-- purchase.lua takes them.
-- ARGV[1] attempt limit (0 = off), ARGV[2] window ms, ARGV[3] the buyerBuckets the caller
-- computed the buckets with; ARGV[4] the purchases, a line each "userId quantity admission\n"
-- (src/store/scripts/sale.rs, write_refuse_line): with the waiting room on, the admission is
-- the expiry (Unix ms) of the one the route verified ('0' without one).
--
-- Returns {0} when the sale is not sold out as this script judges it (no sale, buckets
-- computed with another number, the window not open, stock left, or a hold due to expire):
-- nothing was read or written per purchase, and every purchase goes to purchase.lua. Else
-- {1, width, answer 1, ..., answer n}, flat as purchase.lua's, each answer 'DECIDE' (and zeros)
-- or purchase.lua's refusal: code, 0, 0, 0, retryAfterMs, and on a checkout sale (width 9)
-- 0, 0, '', heldStock.

local start_ms, end_ms, total, _, sold, buckets, order_seq, held, room_rate, limited =
  read_sale(KEYS[1])
if not start_ms or buckets ~= tonumber(ARGV[3]) or sold < total then
  return {0}
end
-- The window decides before the stock (purchase.lua): outside it, the answer is not SOLD_OUT.
local now_ms = redis_now_ms()
if now_ms < start_ms or now_ms >= end_ms then
  return {0}
end
local max_per_buyer = 1
if order_seq then
  -- A hold due now would come back to stock in purchase.lua before the stock is judged.
  if #redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms, 'LIMIT', 0, 1) > 0 then
    return {0}
  end
  max_per_buyer = tonumber(redis.call('HGET', KEYS[1], 'maxPerBuyer')) or 1
end
local in_room = room_rate and room_rate > 0
local limit, window_ms = tonumber(ARGV[1]), ARGV[2]

local width = order_seq and 9 or 5
local answers = {1, width}
local refused = 0
local i = 0
for user, quantity, admission in string.gmatch(ARGV[4], '(%S+) (%d+) (%d+)\n') do
  i = i + 1
  -- purchase.lua's order: the buyer's record, the admission, the quantity, then the stock.
  if redis.call('HEXISTS', KEYS[2 + 2 * i], user) == 1
      or (in_room and now_ms >= tonumber(admission))
      or tonumber(quantity) > max_per_buyer then
    put_answer(answers, {'DECIDE', 0, 0, 0, 0, 0, 0, '', 0}, width)
  else
    local code, wait
    code, wait, limited = refuse_for_stock(KEYS[1], KEYS[3 + 2 * i], limit, window_ms, limited)
    refused = refused + 1
    put_answer(answers, {code, 0, 0, 0, wait, 0, 0, '', held}, width)
  end
end
if refused > 0 then
  redis.call('INCRBY', KEYS[2], refused)
end
return answers
