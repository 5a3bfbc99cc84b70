-- sale_stats.lua: a sale's config and counters in one read (admin GET). Read-only.
--
-- KEYS[1] config, KEYS[2] orders, KEYS[3] refused, KEYS[4] room, then the buyer buckets
-- sale:{ID}:buyers:0.. of ARGV[1] buyerBuckets
-- ARGV[1] the buyerBuckets the caller assumed
-- Returns {'BUCKETS', buyerBuckets} (prelude: needs_buckets) when the sale has other buckets
-- than the caller passed, nil when the sale does not exist, else {productName, totalStock,
-- startMs, endMs, createdMs, remaining, buyers, orders, refused, redisNowMs, holdMs,
-- maxPerBuyer, checkout (1 on a checkout sale), held, confirmed, released, orderSeq}; a plain
-- sale's units sold are all confirmed; with the waiting room on, its fields follow (prelude:
-- room_reply). `buyers` counts the buyer records themselves (every bucket's HLEN, less the lapsed ones a release left: prelude,
-- release_order), not the sold counter, so the admin API's `consistent`
-- compares three independent things: the counter, the records and the order stream. That makes
-- this script O(buckets), about a millisecond per 1,000 buckets (100,000 units): admin only.

local start_ms, end_ms, total, name, sold, buckets, order_seq = read_sale(KEYS[1])
if not start_ms then
  return nil
end
if buckets ~= tonumber(ARGV[1]) then
  return needs_buckets(buckets)
end
local co = checkout_lib()
local now_ms = redis_now_ms()
local hold_ms, max_per_buyer = co.read_checkout(KEYS[1])
local c = redis.call('HMGET', KEYS[1], 'held', 'confirmed', 'released', 'lapsed', 'createdMs')
local buyers = -(tonumber(c[4]) or 0)
for i = 5, #KEYS do
  buyers = buyers + redis.call('HLEN', KEYS[i])
end
local reply = {name, total, start_ms, end_ms,
  tonumber(c[5]) or 0, total - sold, buyers,
  redis.call('XLEN', KEYS[2]), tonumber(redis.call('GET', KEYS[3])) or 0, now_ms, hold_ms,
  max_per_buyer, order_seq and 1 or 0, tonumber(c[1]) or 0, tonumber(c[2]) or sold,
  tonumber(c[3]) or 0, order_seq or sold}
local rooms = room_lib()
local room = rooms.read_room(KEYS[4])
if room then
  for _, field in ipairs(rooms.room_reply(room, now_ms, start_ms)) do
    reply[#reply + 1] = field
  end
end
return reply
