-- delete_sale.lua: removes every key of a sale (admin DELETE).
--
-- KEYS[1] config, KEYS[2] buyers (the prefix of its buckets), KEYS[3] orders, KEYS[4] refused,
-- KEYS[5] restocks, KEYS[6] orders:dead, KEYS[7] orders:retry, KEYS[8] orders:attempts (webhook
-- delivery), KEYS[9] checkouts, KEYS[10] expiries, KEYS[11] payments, KEYS[12] queue,
-- KEYS[13] prequeue, KEYS[14] room, then the buyer buckets sale:{ID}:buyers:0.. of ARGV[1]
-- buyerBuckets
-- ARGV[1] the buyerBuckets the caller assumed
-- Returns 0 when the sale did not exist (nothing removed), else 1 (the caller then deletes the
-- attempt counters, whose names it cannot know in advance), or {'BUCKETS', buyerBuckets}
-- (prelude: needs_buckets) when the sale has other buckets than the caller passed (nothing
-- removed: call again).

local start_ms, _, _, _, _, buckets = read_sale(KEYS[1])
if not start_ms then
  return 0
end
if buckets ~= tonumber(ARGV[1]) then
  return needs_buckets(buckets)
end
redis.call('DEL', KEYS[1], unpack(KEYS, 3, 14))
unlink_keys_from(15)
return 1
