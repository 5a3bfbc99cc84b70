-- put_sale.lua: creates or replaces a sale (admin PUT). Atomic.
--
-- KEYS[1] config, KEYS[2] stock, KEYS[3] buyers, KEYS[4] orders, KEYS[5] refused, KEYS[6] restocks,
-- KEYS[7] orders:dead, KEYS[8] orders:retry, KEYS[9] orders:attempts (webhook delivery)
-- ARGV[1] productName, ARGV[2] totalStock, ARGV[3] startMs, ARGV[4] endMs, ARGV[5] force (1/0),
-- ARGV[6] the attempt-counter pattern (sale:{ID}:rl:*)
-- Returns 'CREATED', 'SAME' (identical, nothing changed), 'HAS_BUYERS' (refused without
-- force) or 'REPLACED' (stock, buyers, orders and attempt counters reset).

local start_ms, end_ms, total, name = read_sale(KEYS[1])
if start_ms then
  if name == ARGV[1] and total == tonumber(ARGV[2]) and start_ms == tonumber(ARGV[3])
      and end_ms == tonumber(ARGV[4]) then
    return 'SAME'
  end
  if redis.call('HLEN', KEYS[3]) > 0 and ARGV[5] ~= '1' then
    return 'HAS_BUYERS'
  end
end
local created = not start_ms
if not created then
  redis.call('DEL', unpack(KEYS, 3))
  delete_matching(ARGV[6])
end
redis.call('HSET', KEYS[1], 'productName', ARGV[1], 'totalStock', ARGV[2],
  'startMs', ARGV[3], 'endMs', ARGV[4], 'createdMs', redis_now_ms())
redis.call('SET', KEYS[2], ARGV[2])
return created and 'CREATED' or 'REPLACED'
