-- purchase.lua: decides one purchase atomically. This script is the whole of the decision.
--
-- KEYS[1] sale:{ID}:config   hash: productName, totalStock, startMs, endMs, createdMs, sold,
--                            buyerBuckets (remaining stock = totalStock - sold)
-- KEYS[2] sale:{ID}:buyers   the prefix of the buyer buckets: hash <prefix>:<n>, userId -> buyer
--                            record (prelude: buyer_bucket, buyer_record)
-- KEYS[3] sale:{ID}:rl:<userId>  integer with TTL: attempts that could not buy, this window
-- KEYS[4] sale:{ID}:orders   stream: one entry per unit sold, for fulfilment
-- KEYS[5] sale:{ID}:refused  integer: attempts refused (not started, ended, limited, sold out)
-- ARGV[1] userId, ARGV[2] request token, ARGV[3] attempt limit (0 = off), ARGV[4] window ms,
-- ARGV[5] saleId, ARGV[6] the HTTP request id (for the order entry), ARGV[7] '1' when the
-- caller WAITs for replicas after this script (PURCHASE_WAIT_REPLICAS)
--
-- Returns {code, remainingStock, purchaseMs, orderNumber, retryAfterMs}; the codes are those of
-- `Code::PURCHASE` in src/domain/outcome.rs.
--
-- Every read and check comes first and the writes come last, and nothing after the first write
-- can raise an error (Redis has no rollback). Running the same call twice is safe: the second
-- run finds its own request token in the buyer record and answers PURCHASED again, taking
-- nothing (fred re-sends in-flight commands after a reconnect). Every command here is O(1), or
-- bounded by one buyer bucket (about 100 entries).

local start_ms, end_ms, total, _, sold, buckets = read_sale(KEYS[1])
if not start_ms then
  return {'SALE_NOT_FOUND', 0, 0, 0, 0}
end
local remaining = total - sold
local bucket = buyer_bucket(KEYS[2], buckets, ARGV[1])

-- A buyer is answered before the window and the attempt limit, so a retry of the request that
-- bought is never told it failed, even after the sale has closed (README, How a purchase stays atomic: retry safety).
local record = redis.call('HGET', bucket, ARGV[1])
if record then
  local bought_ms, order, token = parse_buyer(record)
  local code = (token == ARGV[2]) and 'PURCHASED' or 'ALREADY_PURCHASED'
  if code == 'PURCHASED' and ARGV[7] == '1' then
    -- A retry whose first answer was lost: writing the same record again makes this
    -- connection's WAIT cover the purchase (WAIT counts only this connection's writes).
    redis.call('HSET', bucket, ARGV[1], record)
  end
  return {code, remaining, bought_ms, order, 0}
end

-- The sale window is judged by Redis's clock, never an instance's (README, How a purchase stays atomic, step 3). The
-- window decides before the stock, as SaleSnapshot::status_at does (a test ties the two).
local now_ms = redis_now_ms()
if now_ms < start_ms then
  redis.call('INCR', KEYS[5])
  return {'SALE_NOT_STARTED', remaining, 0, 0, 0}
end
if now_ms >= end_ms then
  redis.call('INCR', KEYS[5])
  return {'SALE_ENDED', remaining, 0, 0, 0}
end

-- Only attempts that cannot buy are counted: an attempt that buys makes the user a buyer, and
-- buyers are answered above, so counting it could never matter and would cost two writes.
local limit = tonumber(ARGV[3])
if remaining <= 0 then
  if limit > 0 then
    -- A first refusal this window creates its counter with its expiry in one command (most of
    -- a sold-out flood is first attempts); a later one counts on. The attempt past the limit
    -- is answered RATE_LIMITED, as the check below answers it while stock remains.
    if not redis.call('SET', KEYS[3], 1, 'PX', ARGV[4], 'NX') then
      if redis.call('INCR', KEYS[3]) > limit then
        redis.call('INCR', KEYS[5])
        return {'RATE_LIMITED', 0, 0, 0, redis.call('PTTL', KEYS[3])}
      end
    end
  end
  redis.call('INCR', KEYS[5])
  return {'SOLD_OUT', 0, 0, 0, 0}
end

if limit > 0 then
  local attempts = tonumber(redis.call('GET', KEYS[3])) or 0
  if attempts >= limit then
    local wait = redis.call('PTTL', KEYS[3])
    redis.call('INCR', KEYS[5])
    return {'RATE_LIMITED', remaining, 0, 0, wait}
  end
end

-- One counter takes the unit and numbers the order: order numbers count buyers, so they stay
-- 1..n without gaps even after a restock.
local order = redis.call('HINCRBY', KEYS[1], 'sold', 1)
redis.call('HSET', bucket, ARGV[1], buyer_record(now_ms, order, ARGV[2]))
-- The order is recorded by the same atomic script that sells the unit: no unit is ever sold
-- without its order, and a re-run of this request (answered above) adds no second entry.
redis.call('XADD', KEYS[4], '*', 'saleId', ARGV[5], 'userId', ARGV[1],
  'orderNumber', order, 'purchaseTime', now_ms, 'requestId', ARGV[6])
return {'PURCHASED', remaining - 1, now_ms, order, 0}
