-- webhook_done.lua: an order was delivered (the receiver answered 2xx): acknowledge it.
--
-- KEYS[1] the stream it came from (orders or orders:retry), KEYS[2] sale:{ID}:orders:attempts
-- ARGV[1] consumer group, ARGV[2] entry id, ARGV[3] its attempts field, ARGV[4] '1' when the
-- entry is a re-driven one (its copy in orders:retry has done its job and is removed)

redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[3])
if ARGV[4] == '1' then
  redis.call('XDEL', KEYS[1], ARGV[2])
end
return 1
