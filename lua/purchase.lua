-- purchase.lua: decides a batch of purchases of one sale atomically, in the order given, each
-- exactly as if it ran alone (a batch of one is a single purchase). This script is the whole of
-- the decision.
--
-- KEYS[1] sale:{ID}:config   hash: productName, totalStock, startMs, endMs, createdMs, sold,
--                            buyerBuckets (remaining stock = totalStock - sold); a checkout
--                            sale adds orderSeq, holdMs, maxPerBuyer, held, confirmed, released,
--                            lapsed (prelude: release_order)
-- KEYS[2] sale:{ID}:orders   stream: one entry per order event, for fulfilment
-- KEYS[3] sale:{ID}:refused  integer: attempts refused (not started, ended, limited, sold out)
-- KEYS[4] sale:{ID}:checkouts  hash: orderNumber -> order record (checkout sales only)
-- KEYS[5] sale:{ID}:expiries   sorted set: held orderNumber by holdExpiresMs
-- KEYS[6] sale:{ID}:room       hash: the waiting room (prelude: room_lib), read only with it on
-- KEYS[7] sale:{ID}:gate       string with TTL: while it exists no unit is sold (lua/sold_out.lua
--                              sets it when an instance refuses purchases without Redis)
-- then for the i-th purchase (i = 1..n):
-- KEYS[6 + 2i] its buyer bucket sale:{ID}:buyers:<b>, userId -> buyer record, where b is the
--              first 8 hex digits of SHA-1(userId) mod buyerBuckets (0 with one bucket),
--              computed by the caller (src/store/keys.rs, bucket_of)
-- KEYS[7 + 2i] its attempt counter sale:{ID}:rl:<userId>: integer with TTL, attempts that
--              could not buy, this window
-- or, in a lean call (ARGV[7] empty), its buyer bucket alone, KEYS[7 + i].
-- These are all the keys the script touches (SPEC §2): a hold that expired is released without
-- its holder's bucket (prelude: release_order).
--
-- ARGV[1] attempt limit (0 = off), ARGV[2] window ms, ARGV[3] saleId, ARGV[4] '1' when the
-- caller WAITs for replicas after this script (PURCHASE_WAIT_REPLICAS), ARGV[5] the
-- buyerBuckets the caller computed the buckets with; ARGV[6] the purchases, binary, an item
-- each (src/store/scripts/sale.rs, put_decide_item; prelude: unpack_purchases): userId, request
-- token, the HTTP request id (for the order entry, may be empty), each a length byte and the
-- text, the units as a byte, and with the waiting room on the expiry (Unix ms) of the admission
-- the route verified, as a length byte and the text ('0' without one); ARGV[7] 32 random hex
-- digits per purchase, the i-th the secret of the reservation token of a hold it places. One
-- argument for all the purchases: fred encodes and Redis parses one value instead of six per
-- purchase.
--
-- A lean call has neither the attempt counters nor the secrets (ARGV[7] is empty): most calls of
-- a sale need neither, and each costs the caller and Redis about 1,500 instructions per purchase
-- (a key crosses into Lua as a string of its own). The script takes one only when no purchase in
-- it can place a hold or be counted as an attempt (the limit off, or the sale never refused
-- for want of stock and stock enough for every purchase of the batch at its most units); else
-- it answers {buyerBuckets, 0} having written nothing, and the caller sends the full call.
--
-- Returns {buyerBuckets, width, purchaseMs, totalStock, answer 1, ..., answer n}, one flat array
-- (prelude: put_answer), each answer `width` fields: code, remainingStock, purchaseMs,
-- orderNumber, retryAfterMs, and on a checkout sale (width 9 instead of 5) also quantity,
-- holdExpiresMs, reservationToken, heldStock; the codes are those of `Code::PURCHASE` in
-- src/domain/outcome.rs. INVALID_REQUEST carries maxPerBuyer as quantity. A new buyer's
-- purchase of a plain sale, most answers of a hot sale, is its orderNumber alone: PURCHASED at
-- the batch's clock (the purchaseMs after the width; 0 when no purchase read it), with
-- totalStock - orderNumber left (a plain sale's order number is the units sold) and no wait.
-- One number instead of five took 4k of a purchase's 52k Redis instructions (callgrind, README
-- Batched decisions). When the caller's
-- buyerBuckets is not the sale's, returns {buyerBuckets} alone, having read and written nothing
-- else: the caller computes the buckets again and calls again. A lean call the sale cannot
-- take: {buyerBuckets, 0}, nothing written.
--
-- Within each purchase every read and check comes first and its writes last; nothing after the
-- first write of a batch can raise an error (Redis has no rollback). The counters the batch
-- shares (sold, refused, the room's admissions used, a checkout sale's orderSeq, held and
-- confirmed) are added once at the end; the clock is read once, and expired holds are looked
-- for until none is left. Running the same call twice is safe: the second run finds each purchase's own
-- request token in its buyer record and answers as the first did, taking nothing (fred re-sends
-- in-flight commands after a reconnect). Every command here is O(1), or bounded by one buyer
-- bucket (about 100 entries) or by the expired holds released (at most 10 per purchase).

local start_ms, end_ms, total, _, sold, buckets, order_seq, held, room_rate, limited =
  read_sale(KEYS[1])
local lean = ARGV[7] == ''
local n = lean and #KEYS - 7 or (#KEYS - 7) / 2
if not start_ms then
  local answers = {tonumber(ARGV[5]), 5, 0, 0}
  for i = 1, n do
    put_answer(answers, 5, 'SALE_NOT_FOUND', 0, 0, 0, 0)
  end
  return answers
end
if buckets ~= tonumber(ARGV[5]) then
  return {buckets}
end

local limit, window_ms, sale_id, waits = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4] == '1'
-- Units sold by this batch (added to `sold` once at the end): a plain sale's order number is
-- the units sold before it plus one, as one HINCRBY would have numbered it.
local sold_now, refused_now, used_now = 0, 0, 0
-- A checkout sale's counters, added once at the end too: orders numbered (orderSeq), units held
-- and confirmed by this batch, and lapsed buyer records overwritten by a new order (negative).
local seq_now, held_now, confirmed_now, lapsed_now = 0, 0, 0, 0
-- Every hold due at this batch's clock has been released (none can fall due later in the
-- batch: the clock is read once, and a hold placed now expires after it).
local drained = false
local remaining = total - sold
-- The checkout helpers, built only for a checkout sale (prelude: checkout_lib).
local co = order_seq and checkout_lib()
local k = co and co.checkout_keys(KEYS[1], KEYS[4], KEYS[5], KEYS[2])
local hold_ms, max_per_buyer = 0, 1
if k then
  hold_ms, max_per_buyer = co.read_checkout(KEYS[1])
end
local in_room = room_rate and room_rate > 0
-- The gate (KEYS[7]): while an instance answers new users SOLD_OUT without asking Redis, for
-- at most the gate's time after lua/sold_out.lua vouched for the buyers it knows, nothing is
-- sold, so none of those users can have come to hold a unit meanwhile (and a unit that came
-- back, by a restock or a released hold, is sold once it lapses: within 100 ms). Read once per
-- batch, and only when there is stock to judge.
local gate_closed
local function gated()
  if gate_closed == nil then
    gate_closed = redis.call('EXISTS', KEYS[7]) == 1
  end
  return gate_closed
end
-- Nothing is written before this check: a batch whose purchases may place a hold or reach
-- refuse_for_stock (which counts the attempt) goes back for its keys. A purchase takes at most
-- max_per_buyer units (more is INVALID_REQUEST), and remaining only grows by released holds,
-- so with stock for every purchase at its most, none is refused for want of stock.
if lean and (hold_ms > 0 or (limit > 0 and (limited or remaining < n * max_per_buyer))) then
  return {buckets, 0}
end

-- Redis's clock, read once per batch and only when a purchase needs it (its text, for the
-- orders, made once too: prelude, int_text).
local clock
local function now()
  clock = clock or redis_now_ms()
  return clock
end

-- The answer of a checkout sale carries the order, the hold and the units still in checkouts.
-- The reservation token goes only to the request that placed the hold (and its retries).
local function checkout_answer(code, record)
  local token = code == 'RESERVED' and record.r or ''
  return code, remaining, record.c, record.n, 0, record.q, record.e, token, held
end

-- A refusal; a checkout sale's says how many units are in checkouts.
local function refuse(code, left, wait, quantity)
  if not k then
    return code, left, 0, 0, wait
  end
  return code, left, 0, 0, wait, quantity or 0, 0, '', held
end

-- The check that refuses the i-th purchase of a user who holds nothing, in purchase order (the
-- admission, the quantity, the window, the stock, the attempt limit), or nil when it buys. It
-- only reads, except that on a checkout sale holds that expired come back before the stock is
-- judged (so a unit that came back is sold at once; the sweeper releases the rest). A refusal
-- for want of stock is 'STOCK' (refused() decides it further), and for a closed gate 'GATED'.
local function refusal(quantity, attempts_key, admission_expires)
  -- With the waiting room on, only an admitted buyer buys. The route checked the admission's
  -- signature before calling (a purchase without one never gets here, unless this instance
  -- has not yet seen the room switched on); its expiry is judged here, on Redis's clock, after
  -- a buyer's own retry was answered.
  if in_room and now() >= tonumber(admission_expires) then
    return 'NOT_ADMITTED'
  end
  if quantity > max_per_buyer then
    return 'INVALID_REQUEST'
  end
  -- The sale window is judged by Redis's clock, never an instance's (README, How a purchase
  -- stays atomic, step 3). The window decides before the stock, as SaleSnapshot::status_at
  -- does (a test ties the two).
  local now_ms = now()
  if now_ms < start_ms then
    return 'SALE_NOT_STARTED'
  end
  if now_ms >= end_ms then
    return 'SALE_ENDED'
  end
  if k and not drained then
    local back, all = co.release_expired(k, now_ms, sale_id, 10)
    remaining, held, drained = remaining + back, held - back, all
  end
  if remaining < quantity then
    return 'STOCK'
  end
  if gated() then
    return 'GATED'
  end
  -- Attempt counters exist only once a purchase was refused for want of stock: until then
  -- there is none to read.
  if limit > 0 and limited
      and (tonumber(redis.call('GET', attempts_key)) or 0) >= limit then
    return 'RATE_LIMITED'
  end
  return nil
end

-- The answer to a refusal(), counting it: nothing for a missing admission or too many units,
-- the refused counter for the rest, and for want of stock the user's attempt too.
local function refused(code, attempts_key)
  if code == 'NOT_ADMITTED' then
    return refuse(code, math.max(remaining, 0), 0)
  end
  if code == 'INVALID_REQUEST' then
    return refuse(code, remaining, 0, max_per_buyer)
  end
  refused_now = refused_now + 1
  if code == 'GATED' then
    -- Not on sale yet: SOLD_OUT at 0 left, as the instances refusing alone answer, and not an
    -- attempt (the buyer did nothing but come early).
    return refuse('SOLD_OUT', 0, 0)
  end
  local wait = 0
  if code == 'STOCK' then
    code, wait, limited = refuse_for_stock(KEYS[1], attempts_key, limit, window_ms, limited)
  elseif code == 'RATE_LIMITED' then
    wait = redis.call('PTTL', attempts_key)
  end
  return refuse(code, math.max(remaining, 0), wait)
end

-- The buyer record of the next order a checkout sale places (place() numbers it alike).
local function next_record(token)
  return buyer_record_text(int_text(now()), int_text(order_seq + seq_now + 1), token)
end

-- A checkout sale's order for the i-th purchase, its buyer record (next_record) already
-- written: the order takes its units and a number of its own; with holds the units are held
-- until the order is confirmed, cancelled or expires. Its fields go straight into the record,
-- the event and the answer, with no table made for the order (prelude: record_json).
local function place(i, user, token, request_id, quantity)
  if in_room then
    -- Admissions used, for the operator's view of the room.
    used_now = used_now + 1
  end
  local now_ms = now()
  sold_now = sold_now + quantity
  remaining = remaining - quantity
  seq_now = seq_now + 1
  local order = order_seq + seq_now
  local order_text, units, created = int_text(order), int_text(quantity), int_text(now_ms)
  if hold_ms > 0 then
    local expires = now_ms + hold_ms
    local expires_text = int_text(expires)
    local reservation = order_text .. '.' .. string.sub(ARGV[7], 32 * i - 31, 32 * i)
    held, held_now = held + quantity, held_now + quantity
    redis.call('ZADD', k.expiries, expires_text, order_text)
    redis.call('HSET', k.checkouts, order_text, co.new_order_json(order_text, user, units, 'held',
      created, expires_text, token, reservation, request_id))
    co.event(k.orders, 'order.reserved', sale_id, user, order_text, units, created, created,
      request_id)
    return 'RESERVED', remaining, now_ms, order, 0, quantity, expires, reservation, held
  end
  confirmed_now = confirmed_now + quantity
  redis.call('HSET', k.checkouts, order_text, co.new_order_json(order_text, user, units,
    'confirmed', created, '0', token, '', request_id))
  redis.call('XADD', KEYS[2], '*', 'saleId', sale_id, 'userId', user, 'orderNumber', order_text,
    'quantity', units, 'purchaseTime', created, 'requestId', request_id)
  return 'PURCHASED', remaining, now_ms, order, 0, quantity, 0, '', held
end

-- The i-th purchase of the batch, its line's fields given (admission as text).
local function decide(i, user, token, request_id, quantity, admission)
  local bucket, attempts_key
  if lean then
    bucket = KEYS[7 + i]
  else
    bucket, attempts_key = KEYS[6 + 2 * i], KEYS[7 + 2 * i]
  end

  -- Most purchases are new buyers who buy. When every check passes, one HSETNX both finds that
  -- the user holds nothing and writes their record; a user who turns out to have one is
  -- answered below as a buyer (the checks read only, so nothing was counted; on a checkout
  -- sale they may have released others' expired holds, as a sweep would).
  local code
  if not k then
    code = refusal(quantity, attempts_key, admission)
    if not code then
      local order_text = string.format('%d', sold + sold_now + quantity)
      local clock_text = int_text(clock)
      if redis.call('HSETNX', bucket, user, buyer_record_text(clock_text, order_text, token)) == 1 then
        sold_now = sold_now + quantity
        remaining = remaining - quantity
        if in_room then
          used_now = used_now + 1
        end
        -- The order is recorded by the same atomic script that sells the unit: no unit is ever
        -- sold without its order, and a re-run of this request (answered as a buyer) adds no
        -- second entry. Order numbers count buyers, so they stay 1..n without gaps even after
        -- a restock.
        redis.call('XADD', KEYS[2], '*', 'saleId', sale_id, 'userId', user,
          'orderNumber', order_text, 'purchaseTime', clock_text, 'requestId', request_id)
        -- PURCHASED, answered by its order number alone (see Returns above).
        return sold + sold_now
      end
    end
  else
    -- A checkout sale likewise: one HSETNX both finds that a user who passes every check
    -- holds nothing and writes the record of the order placed for them.
    code = refusal(quantity, attempts_key, admission)
    if not code and redis.call('HSETNX', bucket, user, next_record(token)) == 1 then
      return place(i, user, token, request_id, quantity)
    end
  end

  -- A buyer is answered before the window and the attempt limit, so a retry of the request
  -- that bought is never told it failed, even after the sale has closed (README, How a purchase
  -- stays atomic: retry safety).
  local record = redis.call('HGET', bucket, user)
  -- The record names an order whose units are no longer the user's (prelude: lapsed): a new
  -- order overwrites it below.
  local lapsed = false
  if record then
    local bought_ms, order, bought_token = parse_buyer(record)
    local same = bought_token == token
    if same and waits then
      -- A retry whose first answer was lost: writing the same record again makes this
      -- connection's WAIT cover the purchase (WAIT counts only this connection's writes).
      redis.call('HSET', bucket, user, record)
    end
    if not k then
      return same and 'PURCHASED' or 'ALREADY_PURCHASED', remaining, bought_ms, order, 0
    end
    local placed = co.buyer_order(k.checkouts, user, bought_ms, order, bought_token)
    if placed.s == 'held' and placed.e <= now() then
      -- An expired hold the sweeper has not reached yet: released now, and the buyer may buy.
      co.release_order(k, placed, now(), sale_id, '', 'expired')
      remaining, held = remaining + placed.q, held - placed.q
    elseif placed.s == 'held' then
      return checkout_answer(same and 'RESERVED' or 'ALREADY_RESERVED', placed)
    elseif not co.lapsed(placed) then
      return checkout_answer(same and 'PURCHASED' or 'ALREADY_PURCHASED', placed)
    end
    lapsed = true
  end

  if lapsed then
    -- Judged again: releasing the user's own expired hold gave units back.
    code = refusal(quantity, attempts_key, admission)
  end
  if code then
    return refused(code, attempts_key)
  end

  redis.call('HSET', bucket, user, next_record(token))
  if lapsed then
    lapsed_now = lapsed_now - 1
  end
  return place(i, user, token, request_id, quantity)
end

local width = k and 9 or 5
local answers = {buckets, width, 0, total}
local fields = unpack_purchases('Bc0Bc0Bc0BBc0', n, ARGV[6])
for i = 1, n do
  local at = 5 * (i - 1)
  put_answer(answers, width, decide(i, fields[at + 1], fields[at + 2], fields[at + 3],
    fields[at + 4], fields[at + 5]))
end
answers[3] = clock or 0
for field, added in pairs({sold = sold_now, orderSeq = seq_now, held = held_now,
    confirmed = confirmed_now, lapsed = lapsed_now}) do
  if added ~= 0 then
    redis.call('HINCRBY', KEYS[1], field, int_text(added))
  end
end
if refused_now > 0 then
  redis.call('INCRBY', KEYS[3], int_text(refused_now))
end
if used_now > 0 then
  redis.call('HINCRBY', KEYS[6], 'used', int_text(used_now))
end
return answers
