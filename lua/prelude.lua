-- prelude.lua: joined in front of every script at build time (src/store/scripts/mod.rs), so each
-- rule below has one definition that all scripts share.

-- Redis's clock in Unix milliseconds: the one clock of the service (README, How a purchase stays atomic, step 3).
local function redis_now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- An integer as text, each number made text once per script call. Redis makes a number
-- handed to redis.call text with "%.17g", and cjson.encode a number with "%.14g": libc's
-- floating-point printf, about 2,600 to 3,000 instructions each, which made up a sixth of a
-- hold's Redis instructions (callgrind). string.format('%d') costs a fraction of that, and the
-- holds of a batch share their clock, expiry and quantity, so most are found here already.
-- The purchase, order and sweep scripts hand redis.call every number through here or as a
-- literal text (the admin scripts, run once in a while, hand theirs as they are).
local int_texts = {}
local function int_text(x)
  local text = int_texts[x]
  if not text then
    text = string.format('%d', x)
    -- (A NaN, which only a config edited by hand could yield, is no table key: storing it would
    -- raise an error, and scripts call this after their first write.)
    if x == x then
      int_texts[x] = text
    end
  end
  return text
end

-- A sale exists when its config hash holds a window, a total, the units sold and its number of
-- buyer buckets. Returns startMs, endMs, totalStock, productName, sold, buyerBuckets, orderSeq
-- held, wrRate (the waiting room's rate) and limited (set once a purchase was refused for want
-- of stock with the attempt limit on: only then can an attempt counter exist), or nil when the
-- sale does not exist. The remaining stock is totalStock - sold: one
-- counter, so a purchase of a plain sale takes a unit and its order number with one HINCRBY.
--
-- orderSeq exists only on a checkout sale (one that has ever had holds or more than one unit
-- per buyer): its orders are numbered by orderSeq, since units and orders no longer count
-- alike, and its orders are records in sale:{ID}:checkouts (read_order). `held` counts the
-- units in unconfirmed holds; they are part of `sold`.
local function read_sale(config_key)
  local cfg = redis.call('HMGET', config_key, 'startMs', 'endMs', 'totalStock', 'productName',
    'sold', 'buyerBuckets', 'orderSeq', 'held', 'wrRate', 'limited')
  local start_ms, end_ms, total = tonumber(cfg[1]), tonumber(cfg[2]), tonumber(cfg[3])
  local sold, buckets = tonumber(cfg[5]), tonumber(cfg[6])
  if not (start_ms and end_ms and total and sold and buckets) then
    return nil
  end
  return start_ms, end_ms, total, cfg[4] or '', sold, buckets, tonumber(cfg[7]),
    tonumber(cfg[8]) or 0, tonumber(cfg[9]), cfg[10] == '1'
end


-- Buyers live in small hashes, `<buyers prefix>:<n>`, about 100 buyers each once the stock is
-- sold, so Redis keeps each as a listpack (hash-max-listpack-entries, 128 by default): about
-- 40 % of the memory of one big hash, whose every field costs a dictEntry and two allocations.
-- The number is fixed when a sale is created (or replaced) and kept in its config.
local function buyer_buckets(total)
  return math.min(65536, math.max(1, math.ceil(total / 100)))
end

-- A user's bucket is the first 32 bits of the SHA-1 of their userId modulo buyerBuckets; the
-- service computes it (src/store/keys.rs, bucket_of) and passes the bucket in KEYS, with the
-- buyerBuckets it assumed, so no script names a key it was not given (SPEC §2; lua/key_check.lua
-- holds the tests to it). A script handed a bucket for another buyerBuckets answers
-- needs_buckets before it writes anything, and the service calls again.

-- The answer of a script that was not given the bucket(s) it needs: the sale's buyerBuckets,
-- and the user whose bucket it needs when that is not the user of the call (purchase.lua, on
-- the hot path, answers {buyerBuckets} alone).
local function needs_buckets(buckets, user)
  return {'BUCKETS', buckets, user}
end

-- Removes the keys KEYS[first..#KEYS] (a sale's buyer buckets; admin scripts only: O(buckets)).
local function unlink_keys_from(first)
  for from = first, #KEYS, 1000 do
    redis.call('UNLINK', unpack(KEYS, from, math.min(from + 999, #KEYS)))
  end
end

-- Writes a new sale's config: nothing sold yet, its buyer buckets sized to its stock.
local function write_new_sale(config_key, name, total, start_ms, end_ms)
  redis.call('HSET', config_key, 'productName', name, 'totalStock', total, 'startMs', start_ms,
    'endMs', end_ms, 'createdMs', redis_now_ms(), 'sold', 0,
    'buyerBuckets', buyer_buckets(tonumber(total)))
end

-- A buyer record: "<purchaseMs>:<orderNumber>:<requestToken>", from purchaseMs and orderNumber
-- made text (int_text: Lua's own number-to-text conversion goes through "%.14g").
local function buyer_record_text(purchase_ms_text, order_text, token)
  return purchase_ms_text .. ':' .. order_text .. ':' .. token
end

-- Returns purchaseMs, orderNumber and the request token of a buyer record.
local function parse_buyer(record)
  local purchase_ms, order, token = string.match(record, '^(%d+):(%d+):(.*)$')
  return tonumber(purchase_ms), tonumber(order), token
end


-- The `n` purchases of a batch, each of struct format `item` (src/store/scripts/sale.rs,
-- put_decide_item and put_refuse_item: texts as a length byte and the text, the quantity as a
-- byte), unpacked by one call into one flat list, the fields of the i-th purchase after those
-- of the first i - 1. Everything is read before anything is written, so a list that does not
-- hold exactly `n` purchases raises its error with nothing written (Redis has no rollback).
-- One struct.unpack instead of string.gmatch over lines of text: the pattern looked at every
-- character through a character class, 8.1k against 3.6k instructions per purchase.
local function unpack_purchases(item, n, data)
  if n == 0 then
    return {}
  end
  local fields = {struct.unpack(string.rep(item, n), data)}
  if fields[#fields] ~= #data + 1 then
    error('the purchases are not ' .. n .. ' items of ' .. item)
  end
  return fields
end

-- Appends a purchase answer's first `width` fields (5, or 9 on a checkout sale) to a batch's
-- reply, which is one flat array: Redis turns every table in a reply into an array with seven
-- field probes (err, ok, double, ...) and a deferred length: with a table per answer that was
-- 3.5 % of a purchase's Redis instructions (callgrind of redis-server under wrk). The fields come
-- as arguments, not as a table: a table per answer cost about 4,000 more instructions. An
-- answer of one field (purchase.lua's new buyer, its order number) is appended alone.
local function put_answer(answers, width, a, b, c, d, e, f, g, h, i)
  local m = #answers
  if b == nil then
    answers[m + 1] = a
    return
  end
  answers[m + 1], answers[m + 2], answers[m + 3], answers[m + 4], answers[m + 5] = a, b, c, d, e
  if width > 5 then
    answers[m + 6], answers[m + 7], answers[m + 8], answers[m + 9] = f, g, h, i
  end
end

-- A purchase refused for want of stock (purchase.lua and sold_out.lua refuse alike). Only such
-- attempts count against the user's attempt limit (`limit`, 0 = off): an attempt that buys makes
-- the user a buyer, and buyers are answered before any limit. The first refusal of a sale with
-- the limit on sets its config's `limited` (from then on attempt counters may exist and a
-- purchase while stock remains reads its own). A first refusal this window creates its counter
-- with its expiry in one command (most of a sold-out flood is first attempts); a later one counts
-- on, and the attempt past the limit is answered RATE_LIMITED. Returns the code, the wait in ms
-- and whether the sale is `limited` now.
local function refuse_for_stock(config_key, attempts_key, limit, window_ms, limited)
  if limit <= 0 then
    return 'SOLD_OUT', 0, limited
  end
  if not limited then
    redis.call('HSET', config_key, 'limited', '1')
  end
  if not redis.call('SET', attempts_key, '1', 'PX', window_ms, 'NX') then
    if redis.call('INCR', attempts_key) > limit then
      return 'RATE_LIMITED', redis.call('PTTL', attempts_key), true
    end
  end
  return 'SOLD_OUT', 0, true
end

-- The checkout helpers (holds, order records, releases), built only by the scripts and calls
-- that need them: every `local function` of this prelude is created again on each script call,
-- so the purchase of a sale without holds would pay for each of these (about 0.2 µs apiece).
-- checkout_lib() returns them as one table.
local function checkout_lib()
  -- A checkout sale's settings: holdMs (0 = no holds: an order is confirmed when it is placed)
  -- and maxPerBuyer.
  local function read_checkout(config_key)
    local cfg = redis.call('HMGET', config_key, 'holdMs', 'maxPerBuyer')
    return tonumber(cfg[1]) or 0, tonumber(cfg[2]) or 1
  end

  -- Makes a sale a checkout sale when its settings ask for one (holds, or more than one unit per
  -- buyer), carrying its plain orders over: each was one confirmed unit, numbered by `sold`.
  -- Once a checkout sale, always one (a plain purchase would number orders by `sold` again).
  -- (Callers that know nothing of checkouts, such as the load-test peer, pass neither: none.)
  local function write_checkout(config_key, hold_ms, max_per_buyer)
    hold_ms, max_per_buyer = hold_ms or 0, max_per_buyer or 1
    redis.call('HSET', config_key, 'holdMs', hold_ms, 'maxPerBuyer', max_per_buyer)
    if tonumber(hold_ms) > 0 or tonumber(max_per_buyer) > 1 then
      local sold = redis.call('HGET', config_key, 'sold') or 0
      if redis.call('HSETNX', config_key, 'orderSeq', sold) == 1 then
        redis.call('HSET', config_key, 'held', 0, 'confirmed', sold, 'released', 0)
      end
    end
  end

  -- One order of a checkout sale, a JSON record in sale:{ID}:checkouts under its number:
  -- n orderNumber, u userId, q quantity, s state (held, confirmed, released, refund_required),
  -- c createdMs, e holdExpiresMs (0 without a hold), t the request token that placed it,
  -- r the reservation token, rid the request id, late (confirmed after its hold expired),
  -- h the history: {state, at, reason?} in order.
  local function read_order(checkouts_key, order)
    local raw = redis.call('HGET', checkouts_key, order)
    if not raw then
      return nil
    end
    return cjson.decode(raw)
  end

  -- The order a buyer record names. A sale that became a checkout sale (PATCH) after it sold
  -- has buyers with no order record: each bought one unit, paid, so each is read as that.
  local function buyer_order(checkouts_key, user, bought_ms, order, token)
    return read_order(checkouts_key, order) or {n = order, u = user, q = 1, s = 'confirmed',
      c = bought_ms, e = 0, t = token, r = '', rid = '', late = false, h = {}}
  end

  -- An order record as JSON. Written here rather than by cjson.encode(record), which makes each
  -- of its numbers text with "%.14g" (int_text says why not); its texts are still escaped by
  -- cjson, one at a time, so a userId, token or request id holding a quote, a backslash or a
  -- control character reads back as it was (a test pins the record field for field). The
  -- states and reasons are this file's own words. record_json takes the fields as they are
  -- written (numbers as text, the history as its JSON items), so a purchase placing an order
  -- makes no table for it (in Redis's Lua a table made and dropped costs more than its fields).
  local json = cjson.encode
  local function record_json(n, u, q, s, c, e, t, r, rid, late, steps)
    return '{"n":' .. n .. ',"u":' .. json(u) .. ',"q":' .. q .. ',"s":"' .. s .. '","c":' .. c
      .. ',"e":' .. e .. ',"t":' .. json(t) .. ',"r":' .. json(r) .. ',"rid":' .. json(rid)
      .. ',"late":' .. (late and 'true' or 'false') .. ',"h":[' .. steps .. ']}'
  end

  -- A history step's JSON item.
  local function step_json(state, at, reason)
    return '{"state":"' .. state .. '","at":' .. at
      .. (reason and (',"reason":"' .. reason .. '"}') or '}')
  end

  local function order_json(r)
    local steps = ''
    for i, step in ipairs(r.h) do
      steps = steps .. (i > 1 and ',' or '')
        .. step_json(step.state, int_text(step.at), step.reason)
    end
    return record_json(int_text(r.n), r.u, int_text(r.q), r.s, int_text(r.c), int_text(r.e), r.t,
      r.r, r.rid, r.late, steps)
  end

  -- A new order's record: its one step is its state at its creation (`c`), texts as in
  -- record_json.
  local function new_order_json(n, u, q, s, c, e, t, r, rid)
    return record_json(n, u, q, s, c, e, t, r, rid, false, step_json(s, c))
  end

  local function write_order(checkouts_key, record, state, now_ms, reason)
    record.s = state
    record.h[#record.h + 1] = {state = state, at = now_ms, reason = reason}
    redis.call('HSET', checkouts_key, int_text(record.n), order_json(record))
  end

  -- Appends a lifecycle event of an order to the order stream (order.created stays the event of
  -- a plain sale's purchase and carries no type field), its numbers as text.
  local function event(orders_key, kind, sale_id, user, order, units, created, at, request_id,
      reason)
    -- (Two calls rather than a table of fields and unpack: a hold makes one without a reason.)
    if reason then
      redis.call('XADD', orders_key, '*', 'type', kind, 'saleId', sale_id, 'userId', user,
        'orderNumber', order, 'quantity', units, 'purchaseTime', created, 'at', at,
        'requestId', request_id, 'reason', reason)
    else
      redis.call('XADD', orders_key, '*', 'type', kind, 'saleId', sale_id, 'userId', user,
        'orderNumber', order, 'quantity', units, 'purchaseTime', created, 'at', at,
        'requestId', request_id)
    end
  end

  -- The same, of an order record.
  local function order_event(orders_key, kind, sale_id, record, now_ms, request_id, reason)
    event(orders_key, kind, sale_id, record.u, int_text(record.n), int_text(record.q),
      int_text(record.c), int_text(now_ms), request_id, reason)
  end

  -- The keys of a sale's checkouts, in the order the checkout scripts take them.
  local function checkout_keys(config, checkouts, expiries, orders)
    return {config = config, checkouts = checkouts, expiries = expiries, orders = orders}
  end

  -- An order whose units are no longer its own: released, or a late payment refused. A buyer
  -- record that names one is lapsed: its user holds nothing and may buy again.
  local function lapsed(record)
    return record.s == 'released' or record.s == 'refund_required'
  end

  -- Releases a held or confirmed order: its units return to stock and the order stream says
  -- why. Its buyer record stays, lapsed (the order it names says so), and is counted in the
  -- config's `lapsed`: a hold expiring as another buyer's purchase runs is released by that
  -- purchase, which was not given the holder's bucket (SPEC §2: no key outside KEYS). The
  -- holder's next purchase overwrites it. The caller has checked the state, so no order is
  -- released twice.
  local function release_order(k, record, now_ms, sale_id, request_id, reason)
    local was, units, back = record.s, int_text(record.q), int_text(-record.q)
    redis.call('HINCRBY', k.config, 'sold', back)
    redis.call('HINCRBY', k.config, was == 'held' and 'held' or 'confirmed', back)
    redis.call('HINCRBY', k.config, 'released', units)
    redis.call('HINCRBY', k.config, 'lapsed', '1')
    redis.call('ZREM', k.expiries, int_text(record.n))
    write_order(k.checkouts, record, 'released', now_ms, reason)
    order_event(k.orders, 'order.released', sale_id, record, now_ms, request_id, reason)
  end

  -- Releases up to `limit` holds whose expiry has passed, oldest first. Returns the units
  -- released, and whether no hold due is left. Bounded, so a purchase or a sweep never runs
  -- long.
  local function release_expired(k, now_ms, sale_id, limit)
    local due = redis.call('ZRANGEBYSCORE', k.expiries, '-inf', int_text(now_ms), 'LIMIT', '0',
      int_text(limit))
    local units = 0
    for _, order in ipairs(due) do
      local record = read_order(k.checkouts, order)
      if record and record.s == 'held' then
        release_order(k, record, now_ms, sale_id, '', 'expired')
        units = units + record.q
      else
        redis.call('ZREM', k.expiries, order)
      end
    end
    return units, #due < limit
  end
  return {
    read_checkout = read_checkout,
    write_checkout = write_checkout,
    read_order = read_order,
    order_json = order_json,
    new_order_json = new_order_json,
    buyer_order = buyer_order,
    write_order = write_order,
    order_event = order_event,
    event = event,
    checkout_keys = checkout_keys,
    lapsed = lapsed,
    release_order = release_order,
    release_expired = release_expired,
  }
end

-- The waiting room's helpers (README, Waiting room), built only by the scripts that need them
-- (as checkout_lib is, so a purchase pays nothing for them). room_lib() returns them as a table.
-- A room lives in its own hash, sale:{ID}:room, so the sale's config (which every purchase
-- reads) stays short: the config only says whether the room is on (wrRate).
local function room_lib()
  -- A sale's room: rate (admitPerSecond), admitMs (how long an admission lasts), opensMs (when
  -- joining opens), commitment (SHA-256 of the draw's seed), seed (secret until the start:
  -- callers decide what to show), pre (joins before the start), seq (joins after it), used
  -- (orders placed with an admission). nil when the room is off.
  local function read_room(room_key)
    local r = redis.call('HMGET', room_key, 'rate', 'admitMs', 'opensMs', 'commitment', 'seed',
      'pre', 'seq', 'used')
    local rate = tonumber(r[1])
    if not rate or rate <= 0 then
      return nil
    end
    return {rate = rate, admit_ms = tonumber(r[2]) or 0, opens_ms = tonumber(r[3]) or 0,
      commitment = r[4] or '', seed = r[5] or '', pre = tonumber(r[6]) or 0,
      seq = tonumber(r[7]) or 0, used = tonumber(r[8]) or 0}
  end

  -- Turns the room on with these settings, or off (rate 0). The draw's seed and its commitment
  -- are written once per sale: a room switched off and on again keeps its draw, so a commitment
  -- once published never changes.
  -- (Callers that know nothing of rooms, such as the load-test peer, pass no rate: no room.)
  local function write_room(config_key, room_key, rate, admit_ms, opens_ms, seed, commitment)
    rate = tonumber(rate) or 0
    if rate <= 0 then
      -- Off: only a sale that has a room has anything to switch off.
      if redis.call('HEXISTS', config_key, 'wrRate') == 1 then
        redis.call('HSET', config_key, 'wrRate', 0)
        redis.call('HSET', room_key, 'rate', 0)
      end
      return
    end
    redis.call('HSET', config_key, 'wrRate', rate)
    redis.call('HSET', room_key, 'rate', rate, 'admitMs', admit_ms, 'opensMs', opens_ms)
    if seed ~= '' and redis.call('HEXISTS', room_key, 'seed') == 0 then
      redis.call('HSET', room_key, 'seed', seed, 'commitment', commitment)
    end
  end

  -- The room's fields of a reply: rate, admitMs, opensMs, commitment, the seed once the sale
  -- has started ('' before), pre, seq, used.
  local function room_reply(room, now_ms, start_ms)
    return {room.rate, room.admit_ms, room.opens_ms, room.commitment,
      now_ms >= start_ms and room.seed or '', room.pre, room.seq, room.used}
  end
  return {read_room = read_room, write_room = write_room, room_reply = room_reply}
end
