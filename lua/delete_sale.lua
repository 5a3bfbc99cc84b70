-- delete_sale.lua: removes every key of a sale (admin DELETE).
--
-- KEYS[1] config, KEYS[2] stock, KEYS[3] buyers, KEYS[4] orders, KEYS[5] refused, KEYS[6] restocks
-- ARGV[1] the attempt-counter pattern (sale:{ID}:rl:*)
-- Returns 0 when the sale did not exist (nothing removed), else 1.

if not read_sale(KEYS[1]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
delete_matching(ARGV[1])
return 1
