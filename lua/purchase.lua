-- purchase.lua: decides one purchase atomically. This script is the whole of the decision.
--
-- KEYS[1] sale:{ID}:config   hash: productName, totalStock, startMs, endMs, createdMs, sold,
--                            buyerBuckets (remaining stock = totalStock - sold); a checkout
--                            sale adds orderSeq, holdMs, maxPerBuyer, held, confirmed, released
-- KEYS[2] sale:{ID}:buyers   the prefix of the buyer buckets: hash <prefix>:<n>, userId -> buyer
--                            record (prelude: buyer_bucket, buyer_record)
-- KEYS[3] sale:{ID}:rl:<userId>  integer with TTL: attempts that could not buy, this window
-- KEYS[4] sale:{ID}:orders   stream: one entry per order event, for fulfilment
-- KEYS[5] sale:{ID}:refused  integer: attempts refused (not started, ended, limited, sold out)
-- KEYS[6] sale:{ID}:checkouts  hash: orderNumber -> order record (checkout sales only)
-- KEYS[7] sale:{ID}:expiries   sorted set: held orderNumber by holdExpiresMs
-- KEYS[8] sale:{ID}:room       hash: the waiting room (prelude: room_lib), read only with it on
-- ARGV[1] userId, ARGV[2] request token, ARGV[3] attempt limit (0 = off), ARGV[4] window ms,
-- ARGV[5] saleId, ARGV[6] the HTTP request id (for the order entry), ARGV[7] '1' when the
-- caller WAITs for replicas after this script (PURCHASE_WAIT_REPLICAS), ARGV[8] quantity,
-- ARGV[9] a random secret for the reservation token, ARGV[10] with the waiting room on, the
-- expiry (Unix ms) of the admission the route verified, '0' without one
--
-- Returns {code, remainingStock, purchaseMs, orderNumber, retryAfterMs}, and on a checkout sale
-- also {quantity, holdExpiresMs, reservationToken, heldStock}; the codes are those of
-- `Code::PURCHASE` in src/domain/outcome.rs. INVALID_REQUEST carries maxPerBuyer as quantity.
--
-- Every read and check comes first and the writes come last, and nothing after the first write
-- can raise an error (Redis has no rollback). Running the same call twice is safe: the second
-- run finds its own request token in the buyer record and answers as the first did, taking
-- nothing (fred re-sends in-flight commands after a reconnect). Every command here is O(1), or
-- bounded by one buyer bucket (about 100 entries) or by the expired holds released (at most 10).

local start_ms, end_ms, total, _, sold, buckets, order_seq, held, room_rate = read_sale(KEYS[1])
if not start_ms then
  return {'SALE_NOT_FOUND', 0, 0, 0, 0}
end
local remaining = total - sold
local bucket = buyer_bucket(KEYS[2], buckets, ARGV[1])
-- The checkout helpers, built only for a checkout sale (prelude: checkout_lib).
local co = order_seq and checkout_lib()
local k = co and co.checkout_keys(KEYS[1], KEYS[2], KEYS[6], KEYS[7], KEYS[4])

-- The answer of a checkout sale carries the order, the hold and the units still in checkouts.
-- The reservation token goes only to the request that placed the hold (and its retries).
-- (Made only for a checkout sale: a function is created anew on every call.)
local checkout_answer
if k then
  checkout_answer = function(code, record)
    local token = code == 'RESERVED' and record.r or ''
    return {code, remaining, record.c, record.n, 0, record.q, record.e, token, held}
  end
end

-- A refusal; a checkout sale's says how many units are in checkouts.
local function refuse(code, left, wait, quantity)
  if not k then
    return {code, left, 0, 0, wait}
  end
  return {code, left, 0, 0, wait, quantity or 0, 0, '', held}
end

local now_ms

-- A buyer is answered before the window and the attempt limit, so a retry of the request that
-- bought is never told it failed, even after the sale has closed (README, How a purchase stays
-- atomic: retry safety).
local record = redis.call('HGET', bucket, ARGV[1])
if record then
  local bought_ms, order, token = parse_buyer(record)
  local same = token == ARGV[2]
  if same and ARGV[7] == '1' then
    -- A retry whose first answer was lost: writing the same record again makes this
    -- connection's WAIT cover the purchase (WAIT counts only this connection's writes).
    redis.call('HSET', bucket, ARGV[1], record)
  end
  if not k then
    return {same and 'PURCHASED' or 'ALREADY_PURCHASED', remaining, bought_ms, order, 0}
  end
  local placed = co.buyer_order(k.checkouts, ARGV[1], bought_ms, order, token)
  now_ms = redis_now_ms()
  if placed.s == 'held' and placed.e <= now_ms then
    -- An expired hold the sweeper has not reached yet: released now, and the buyer may buy.
    co.release_order(k, buckets, placed, now_ms, ARGV[5], '', 'expired')
    remaining, held = remaining + placed.q, held - placed.q
  elseif placed.s == 'held' then
    return checkout_answer(same and 'RESERVED' or 'ALREADY_RESERVED', placed)
  else
    return checkout_answer(same and 'PURCHASED' or 'ALREADY_PURCHASED', placed)
  end
end

-- With the waiting room on, only an admitted buyer buys. The route checked the admission's
-- signature before calling (a purchase without one never gets here, unless this instance has
-- not yet seen the room switched on); its expiry is judged here, on Redis's clock, after a
-- buyer's own retry was answered above. Nothing is written.
local in_room = room_rate and room_rate > 0
if in_room then
  now_ms = redis_now_ms()
  if now_ms >= tonumber(ARGV[10]) then
    return refuse('NOT_ADMITTED', math.max(remaining, 0), 0)
  end
end

local quantity = tonumber(ARGV[8])
local hold_ms, max_per_buyer = 0, 1
if k then
  hold_ms, max_per_buyer = co.read_checkout(KEYS[1])
end
if quantity > max_per_buyer then
  return refuse('INVALID_REQUEST', remaining, 0, max_per_buyer)
end

-- The sale window is judged by Redis's clock, never an instance's (README, How a purchase stays
-- atomic, step 3). The window decides before the stock, as SaleSnapshot::status_at does (a
-- test ties the two).
now_ms = now_ms or redis_now_ms()
if now_ms < start_ms then
  redis.call('INCR', KEYS[5])
  return refuse('SALE_NOT_STARTED', remaining, 0)
end
if now_ms >= end_ms then
  redis.call('INCR', KEYS[5])
  return refuse('SALE_ENDED', remaining, 0)
end

if k then
  -- Holds that expired come back before the stock is judged, so a unit that came back is
  -- sold at once; the sweeper releases the rest.
  local back = co.release_expired(k, buckets, now_ms, ARGV[5], 10)
  remaining, held = remaining + back, held - back
end

-- Only attempts that cannot buy are counted: an attempt that buys makes the user a buyer, and
-- buyers are answered above, so counting it could never matter and would cost two writes.
local limit = tonumber(ARGV[3])
if remaining < quantity then
  if limit > 0 then
    -- A first refusal this window creates its counter with its expiry in one command (most of
    -- a sold-out flood is first attempts); a later one counts on. The attempt past the limit
    -- is answered RATE_LIMITED, as the check below answers it while stock remains.
    if not redis.call('SET', KEYS[3], 1, 'PX', ARGV[4], 'NX') then
      if redis.call('INCR', KEYS[3]) > limit then
        redis.call('INCR', KEYS[5])
        return refuse('RATE_LIMITED', math.max(remaining, 0), redis.call('PTTL', KEYS[3]))
      end
    end
  end
  redis.call('INCR', KEYS[5])
  return refuse('SOLD_OUT', math.max(remaining, 0), 0)
end

if limit > 0 then
  local attempts = tonumber(redis.call('GET', KEYS[3])) or 0
  if attempts >= limit then
    local wait = redis.call('PTTL', KEYS[3])
    redis.call('INCR', KEYS[5])
    return refuse('RATE_LIMITED', remaining, wait)
  end
end

if in_room then
  -- Admissions used, for the operator's view of the room.
  redis.call('HINCRBY', KEYS[8], 'used', 1)
end

if not k then
  -- One counter takes the unit and numbers the order: order numbers count buyers, so they stay
  -- 1..n without gaps even after a restock.
  local order = redis.call('HINCRBY', KEYS[1], 'sold', 1)
  redis.call('HSET', bucket, ARGV[1], buyer_record(now_ms, order, ARGV[2]))
  -- The order is recorded by the same atomic script that sells the unit: no unit is ever sold
  -- without its order, and a re-run of this request (answered above) adds no second entry.
  redis.call('XADD', KEYS[4], '*', 'saleId', ARGV[5], 'userId', ARGV[1],
    'orderNumber', order, 'purchaseTime', now_ms, 'requestId', ARGV[6])
  return {'PURCHASED', remaining - 1, now_ms, order, 0}
end

-- A checkout sale: the order takes its units and a number of its own; with holds the units are
-- held until the order is confirmed, cancelled or expires.
local order = redis.call('HINCRBY', KEYS[1], 'orderSeq', 1)
redis.call('HINCRBY', KEYS[1], 'sold', quantity)
remaining = remaining - quantity
local placed = {n = order, u = ARGV[1], q = quantity, c = now_ms, e = 0, t = ARGV[2], r = '',
  rid = ARGV[6], late = false, h = {}}
redis.call('HSET', bucket, ARGV[1], buyer_record(now_ms, order, ARGV[2]))
if hold_ms > 0 then
  placed.e = now_ms + hold_ms
  placed.r = order .. '.' .. ARGV[9]
  held = held + quantity
  redis.call('HINCRBY', KEYS[1], 'held', quantity)
  redis.call('ZADD', k.expiries, placed.e, order)
  co.write_order(k.checkouts, placed, 'held', now_ms)
  co.order_event(k.orders, 'order.reserved', ARGV[5], placed, now_ms, ARGV[6])
  return checkout_answer('RESERVED', placed)
end
redis.call('HINCRBY', KEYS[1], 'confirmed', quantity)
co.write_order(k.checkouts, placed, 'confirmed', now_ms)
redis.call('XADD', KEYS[4], '*', 'saleId', ARGV[5], 'userId', ARGV[1], 'orderNumber', order,
  'quantity', quantity, 'purchaseTime', now_ms, 'requestId', ARGV[6])
return checkout_answer('PURCHASED', placed)
