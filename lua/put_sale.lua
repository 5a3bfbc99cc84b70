-- put_sale.lua: creates or replaces a sale (admin PUT). Atomic.
--
-- KEYS[1] config, KEYS[2] buyers (the prefix of its buckets), KEYS[3] orders, KEYS[4] refused,
-- KEYS[5] restocks, KEYS[6] orders:dead, KEYS[7] orders:retry, KEYS[8] orders:attempts (webhook
-- delivery)
-- ARGV[1] productName, ARGV[2] totalStock, ARGV[3] startMs, ARGV[4] endMs, ARGV[5] force (1/0),
-- ARGV[6] the attempt-counter pattern (sale:{ID}:rl:*)
-- Returns 'CREATED', 'SAME' (identical, nothing changed), 'HAS_BUYERS' (refused without
-- force) or 'REPLACED' (stock, buyers, orders and attempt counters reset).

local start_ms, end_ms, total, name, sold, buckets = read_sale(KEYS[1])
if start_ms then
  if name == ARGV[1] and total == tonumber(ARGV[2]) and start_ms == tonumber(ARGV[3])
      and end_ms == tonumber(ARGV[4]) then
    return 'SAME'
  end
  if sold > 0 and ARGV[5] ~= '1' then
    return 'HAS_BUYERS'
  end
end
local created = not start_ms
if not created then
  delete_buyers(KEYS[2], buckets)
  redis.call('DEL', unpack(KEYS, 3))
  delete_matching(ARGV[6])
end
write_new_sale(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return created and 'CREATED' or 'REPLACED'
