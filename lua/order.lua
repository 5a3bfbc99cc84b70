-- order.lua: reads, confirms or cancels one order of a checkout sale, atomically (admin confirm
-- and cancel, the buyer's cancel, Stripe's events).
--
-- KEYS[1] config, KEYS[2] checkouts, KEYS[3] expiries, KEYS[4] orders (stream), KEYS[5]
-- payments (sorted set: payment event id -> when it was applied, kept four days: Stripe
-- retries for three), KEYS[6] the buyer bucket of ARGV[8] for ARGV[9] buyerBuckets (absent
-- when ARGV[8] is '')
-- ARGV[1] 'read', 'confirm' or 'cancel'; ARGV[2] orderNumber, or '' to find the order by
-- ARGV[3] userId (the buyer's own order); ARGV[4] the reservation token the caller must hold,
-- or ''; ARGV[5] saleId; ARGV[6] the HTTP request id; ARGV[7] the payment event id, or '';
-- ARGV[8] the user whose bucket KEYS[6] is, or ''; ARGV[9] the buyerBuckets it was computed for
--
-- Returns {'SALE_NOT_FOUND'}, {'ORDER_NOT_FOUND'}, or {status, order record (JSON)} with status
-- 'OK' (done, or already so), 'DUPLICATE' (this payment event was applied before; nothing
-- changed), 'HOLD_EXPIRED' (a confirm whose units went to someone else: refund) or
-- 'ORDER_CONFIRMED' (a paid order is not cancelled here); or {'BUCKETS', buyerBuckets, userId}
-- when the script needs that user's bucket and was not given it (a late payment: the caller
-- knew only the order number), with nothing written (prelude: needs_buckets).
--
-- A confirm and an expiry of the same hold are two calls Redis runs one after the other:
-- whichever runs first decides, and the other sees its result (README, Checkout).

local start_ms, _, total, _, sold, buckets, order_seq = read_sale(KEYS[1])
if not start_ms then
  return {'SALE_NOT_FOUND'}
end
if not order_seq then
  return {'ORDER_NOT_FOUND'}
end
local co = checkout_lib()
local k = co.checkout_keys(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
-- The bucket of `user` when the caller passed it for the sale's buyerBuckets, else nil.
local function bucket_of(user)
  if ARGV[8] == user and tonumber(ARGV[9]) == buckets then
    return KEYS[6]
  end
end
local order = ARGV[2]
if order == '' then
  local bucket = bucket_of(ARGV[3])
  if not bucket then
    return needs_buckets(buckets, ARGV[3])
  end
  local buyer = redis.call('HGET', bucket, ARGV[3])
  if not buyer then
    return {'ORDER_NOT_FOUND'}
  end
  local _, number = parse_buyer(buyer)
  order = number
end
local record = co.read_order(k.checkouts, order)
if not record or (ARGV[3] ~= '' and record.u ~= ARGV[3])
    or (ARGV[4] ~= '' and record.r ~= ARGV[4])
    or (ARGV[2] == '' and co.lapsed(record)) then
  -- (The buyer's own order is the one their record names while its units are theirs.)
  return {'ORDER_NOT_FOUND'}
end
local action = ARGV[1]
if action == 'read' then
  return {'OK', co.order_json(record)}
end
if ARGV[7] ~= '' and redis.call('ZSCORE', KEYS[5], ARGV[7]) then
  return {'DUPLICATE', co.order_json(record)}
end

local now_ms = redis_now_ms()
local status = 'OK'
if action == 'confirm' then
  if record.s == 'held' then
    -- Paid in time, or paid late before anything released the hold: its units are still
    -- its own, so either way it is confirmed (late says which).
    record.late = record.e <= now_ms
    redis.call('HINCRBY', k.config, 'held', int_text(-record.q))
    redis.call('HINCRBY', k.config, 'confirmed', int_text(record.q))
    redis.call('ZREM', k.expiries, int_text(record.n))
    co.write_order(k.checkouts, record, 'confirmed', now_ms)
    co.order_event(k.orders, 'order.confirmed', ARGV[5], record, now_ms, ARGV[6])
  elseif record.s == 'released' then
    -- Paid after its hold was released: the units are taken again if they are still free and
    -- the buyer holds no newer order (one order per buyer); otherwise the shop refunds.
    local bucket = bucket_of(record.u)
    if not bucket then
      return needs_buckets(buckets, record.u)
    end
    -- The buyer's record, if any: left lapsed by a release (prelude: release_order), naming
    -- this order or a newer one released too, or naming a newer order that is the buyer's.
    local buyer = redis.call('HGET', bucket, record.u)
    local lapsed_record, reordered = false, false
    if buyer then
      local bought_ms, named, token = parse_buyer(buyer)
      lapsed_record = named == record.n
        or co.lapsed(co.buyer_order(k.checkouts, record.u, bought_ms, named, token))
      reordered = not lapsed_record
    end
    if not reordered and total - sold >= record.q then
      record.late = true
      redis.call('HINCRBY', k.config, 'sold', int_text(record.q))
      redis.call('HINCRBY', k.config, 'confirmed', int_text(record.q))
      if lapsed_record then
        redis.call('HINCRBY', k.config, 'lapsed', '-1')
      end
      redis.call('HSET', bucket, record.u,
        buyer_record_text(int_text(record.c), int_text(record.n), record.t))
      co.write_order(k.checkouts, record, 'confirmed', now_ms)
      co.order_event(k.orders, 'order.confirmed', ARGV[5], record, now_ms, ARGV[6])
    else
      local reason = reordered and 'reordered' or 'resold'
      co.write_order(k.checkouts, record, 'refund_required', now_ms, reason)
      co.order_event(k.orders, 'order.refund_required', ARGV[5], record, now_ms, ARGV[6], reason)
      status = 'HOLD_EXPIRED'
    end
  elseif record.s == 'refund_required' then
    status = 'HOLD_EXPIRED'
  end
elseif action == 'cancel' then
  if record.s == 'held' then
    co.release_order(k, record, now_ms, ARGV[5], ARGV[6], 'cancelled')
  elseif record.s == 'confirmed' then
    status = 'ORDER_CONFIRMED'
  end
else
  return redis.error_reply('order.lua: unknown action ' .. action)
end
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[5], int_text(now_ms), ARGV[7])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', int_text(now_ms - 4 * 86400000))
end
return {status, co.order_json(record)}
