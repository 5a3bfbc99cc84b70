-- delete_sale.lua: removes every key of a sale (admin DELETE).
--
-- KEYS[1] config, KEYS[2] buyers (the prefix of its buckets), KEYS[3] orders, KEYS[4] refused,
-- KEYS[5] restocks, KEYS[6] orders:dead, KEYS[7] orders:retry, KEYS[8] orders:attempts (webhook
-- delivery), KEYS[9] checkouts, KEYS[10] expiries, KEYS[11] payments, KEYS[12] queue,
-- KEYS[13] prequeue, KEYS[14] room
-- ARGV[1] the attempt-counter pattern (sale:{ID}:rl:*)
-- Returns 0 when the sale did not exist (nothing removed), else 1.

local start_ms, _, _, _, _, buckets = read_sale(KEYS[1])
if not start_ms then
  return 0
end
delete_buyers(KEYS[2], buckets)
redis.call('DEL', KEYS[1], unpack(KEYS, 3))
delete_matching(ARGV[1])
return 1
