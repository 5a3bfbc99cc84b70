-- delete_sale.lua: removes every key of a sale (admin DELETE).
--
-- KEYS[1] config, KEYS[2] stock, KEYS[3] buyers, KEYS[4] orders, KEYS[5] refused, KEYS[6] restocks,
-- KEYS[7] orders:dead, KEYS[8] orders:retry, KEYS[9] orders:attempts (webhook delivery)
-- ARGV[1] the attempt-counter pattern (sale:{ID}:rl:*)
-- Returns 0 when the sale did not exist (nothing removed), else 1.

if not read_sale(KEYS[1]) then
  return 0
end
redis.call('DEL', unpack(KEYS))
delete_matching(ARGV[1])
return 1
