-- sold_out.lua: refuses a batch of purchases of a sale whose stock is gone, cheaply, each
-- exactly as lua/purchase.lua would refuse it, and passes on (answers 'DECIDE' for) any
-- purchase it cannot refuse so: one whose user has a buyer record (a buyer is always answered
-- with what they hold), an admission that has run out, more units than a buyer may have. An
-- instance calls it instead of purchase.lua for a sale whose last batch was refused for want of
-- stock (src/store/purchase.rs); it reads the sale as it is now, so the next call after a
-- restock, a released hold or a reopened window sends every purchase to purchase.lua again.
--
-- A refusal here costs a fraction of a purchase: no request token, request id or reservation
-- secret is passed, no clock text is made, nothing but the buyer's bucket and attempt counter is
-- touched per purchase.
--
-- Known buyers: every answer carries the sale's fingerprint (below); an instance that fetched
-- the sale's buyers after seeing a fingerprint passes it back (ARGV[5]) with only the purchases
-- of users not among those buyers, without their buckets. When the fingerprint is unchanged no
-- buyer record was written since the fetch, so none of them holds anything: each is refused
-- without reading a bucket (its attempt still counted, as always). A changed fingerprint
-- answers {2, fingerprint} and decides nothing.
--
-- Local refusals: a call with known buyers may also vouch for them (ARGV[8], the gate in ms):
-- when the fingerprint still matches, the window stays open past the gate and the room is off,
-- it sets KEYS[4] (sale:{ID}:gate) for that long and answers 3 where it would answer 1. Until
-- the gate lapses lua/purchase.lua sells nothing (it answers SOLD_OUT at 0 left), so for that
-- long no user can come to hold a unit that the caller's known buyers lack, and the caller
-- answers new users SOLD_OUT itself, without Redis, for less than the gate (README, "Refused
-- without Redis"). Its refusals are sent later as a number only, in ARGV[6].
--
-- KEYS[1] sale:{ID}:config, KEYS[2] sale:{ID}:refused, KEYS[3] sale:{ID}:expiries, KEYS[4]
-- sale:{ID}:gate; then for the i-th purchase KEYS[3 + 2i] its buyer bucket and KEYS[4 + 2i]
-- its attempt counter, as purchase.lua takes them; with known buyers, only its attempt
-- counter, KEYS[4 + i], and none with the attempt limit off.
-- ARGV[1] attempt limit (0 = off), ARGV[2] window ms, ARGV[3] the buyerBuckets the caller
-- computed the buckets with; ARGV[4] the purchases, binary, an item each of userId, quantity
-- and admission as purchase.lua's (src/store/scripts/sale.rs, put_refuse_item): with the waiting
-- room on, the admission is the expiry (Unix ms) of the one the route verified ('0' without
-- one); ARGV[5] the fingerprint of the buyers the caller knows, '' for none; ARGV[6], with known
-- buyers and the attempt limit off, how many more purchases of one unit without an admission,
-- by users not among them, are sent as a number only: they are all answered alike, by the
-- group answer; ARGV[7] how many purchases ARGV[4] holds; ARGV[8] the gate in ms to vouch
-- for the known buyers with ('' or 0: none).
--
-- Returns {0} when the sale is not sold out as this script judges it (no sale, buckets
-- computed with another number, the window not open, stock left, or a hold due to expire):
-- nothing was read or written per purchase, and every purchase goes to purchase.lua. {2,
-- fingerprint} when the caller's known buyers are out of date. Else {1 (3 when vouched),
-- fingerprint, width, group answer, answer 1, ..., answer n}, flat as purchase.lua's, each
-- answer 'DECIDE' (and zeros) or purchase.lua's refusal: code, 0, 0, 0, retryAfterMs, and on
-- a checkout sale (width 9) 0, 0, '', heldStock.
--
-- The fingerprint changes whenever a buyer record may have been written: a plain sale's `sold`
-- only grows, a checkout sale numbers each order with `orderSeq`, and a late payment that takes
-- a released order's units again adds to `confirmed` while `held + confirmed + released` never
-- falls (so no sequence of changes comes back to an earlier fingerprint); `totalStock` covers a
-- restock and `createdMs` a sale replaced.

local start_ms, end_ms, total, _, sold, buckets, order_seq, held, room_rate, limited =
  read_sale(KEYS[1])
if not start_ms or buckets ~= tonumber(ARGV[3]) or sold < total then
  return {0}
end
-- The window decides before the stock (purchase.lua): outside it, the answer is not SOLD_OUT.
local now_ms = redis_now_ms()
if now_ms < start_ms or now_ms >= end_ms then
  return {0}
end
local max_per_buyer = 1
if order_seq then
  -- A hold due now would come back to stock in purchase.lua before the stock is judged.
  if #redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', int_text(now_ms), 'LIMIT', '0', '1') > 0 then
    return {0}
  end
  max_per_buyer = tonumber(redis.call('HGET', KEYS[1], 'maxPerBuyer')) or 1
end
local in_room = room_rate and room_rate > 0
local limit, window_ms = tonumber(ARGV[1]), ARGV[2]
local more = redis.call('HMGET', KEYS[1], 'createdMs', 'confirmed', 'released')
local fingerprint = table.concat({total, sold, order_seq or '', more[1] or '', held,
  more[2] or '', more[3] or ''}, ' ')
local known = ARGV[5] ~= ''
if known and ARGV[5] ~= fingerprint then
  return {2, fingerprint}
end

local gate_ms = tonumber(ARGV[8]) or 0
local vouched = known and gate_ms > 0 and not in_room and now_ms + gate_ms < end_ms
if vouched then
  redis.call('SET', KEYS[4], '1', 'PX', int_text(gate_ms))
end

local width = order_seq and 9 or 5
local answers = {vouched and 3 or 1, fingerprint, width}
local refused = 0
-- The group: no admission is a lapsed one in a room; else one unit, no buyer record, no limit.
local group = tonumber(ARGV[6]) or 0
if in_room then
  put_answer(answers, width, 'DECIDE', 0, 0, 0, 0, 0, 0, '', 0)
else
  refused = group
  put_answer(answers, width, 'SOLD_OUT', 0, 0, 0, 0, 0, 0, '', held)
end
local n = tonumber(ARGV[7]) or 0
local fields = unpack_purchases('Bc0BBc0', n, ARGV[4])
for i = 1, n do
  local user, quantity, admission = fields[3 * i - 2], fields[3 * i - 1], fields[3 * i]
  -- purchase.lua's order: the buyer's record, the admission, the quantity, then the stock.
  if (not known and redis.call('HEXISTS', KEYS[3 + 2 * i], user) == 1)
      or (in_room and now_ms >= tonumber(admission))
      or quantity > max_per_buyer then
    put_answer(answers, width, 'DECIDE', 0, 0, 0, 0, 0, 0, '', 0)
  else
    local attempts = known and KEYS[4 + i] or KEYS[4 + 2 * i]
    local code, wait
    code, wait, limited = refuse_for_stock(KEYS[1], attempts, limit, window_ms, limited)
    refused = refused + 1
    put_answer(answers, width, code, 0, 0, 0, wait, 0, 0, '', held)
  end
end
if refused > 0 then
  redis.call('INCRBY', KEYS[2], int_text(refused))
end
return answers
