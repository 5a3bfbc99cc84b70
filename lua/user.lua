-- user.lua: a user's purchase, or that the sale does not exist, in one round trip. Read-only.
--
-- KEYS[1] sale:{ID}:config, KEYS[2] the user's buyer bucket computed for ARGV[2] buckets,
-- KEYS[3] sale:{ID}:checkouts; ARGV[1] userId, ARGV[2] the buyerBuckets the caller assumed
-- Returns {0} when the sale does not exist, {'BUCKETS', buyerBuckets} when the caller's
-- buyerBuckets is not the sale's (prelude: needs_buckets), {1} when the user holds no unit, and
-- {1, purchaseMs, orderNumber} when they do; on a checkout sale {1, purchaseMs, orderNumber,
-- quantity, holdExpiresMs} (0 once confirmed). A hold past its expiry is no unit held: the
-- sweeper is about to release it; nor is a lapsed record's order (prelude: lapsed).

local start_ms, _, _, _, _, buckets, order_seq = read_sale(KEYS[1])
if not start_ms then
  return {0}
end
if buckets ~= tonumber(ARGV[2]) then
  return needs_buckets(buckets)
end
local record = redis.call('HGET', KEYS[2], ARGV[1])
if not record then
  return {1}
end
local bought_ms, order, token = parse_buyer(record)
if not order_seq then
  return {1, bought_ms, order}
end
local co = checkout_lib()
local placed = co.buyer_order(KEYS[3], ARGV[1], bought_ms, order, token)
if co.lapsed(placed) or (placed.s == 'held' and placed.e <= redis_now_ms()) then
  return {1}
end
return {1, bought_ms, order, placed.q, placed.s == 'held' and placed.e or 0}
