-- put_sale.lua: creates or replaces a sale (admin PUT). Atomic.
--
-- KEYS[1] config, KEYS[2] buyers (the prefix of its buckets), KEYS[3] orders, KEYS[4] refused,
-- KEYS[5] restocks, KEYS[6] orders:dead, KEYS[7] orders:retry, KEYS[8] orders:attempts (webhook
-- delivery), KEYS[9] checkouts, KEYS[10] expiries, KEYS[11] payments, KEYS[12] queue,
-- KEYS[13] prequeue, KEYS[14] room, then the buyer buckets sale:{ID}:buyers:0.. of ARGV[8]
-- buyerBuckets
-- ARGV[1] productName, ARGV[2] totalStock, ARGV[3] startMs, ARGV[4] endMs, ARGV[5] holdMs,
-- ARGV[6] maxPerBuyer, ARGV[7] force (1/0), ARGV[8] the buyerBuckets the caller assumed,
-- ARGV[9] admitPerSecond (0 = no waiting room), ARGV[10] admitMs, ARGV[11] opensMs, ARGV[12] a
-- fresh draw seed, ARGV[13] its commitment (used only if the sale has no draw yet)
-- Returns 'CREATED', 'SAME' (identical, nothing changed), 'HAS_BUYERS' (refused without
-- force), 'REPLACED' (stock, buyers and orders reset; the caller then deletes the attempt
-- counters, whose names it cannot know in advance) or {'BUCKETS', buyerBuckets} (prelude:
-- needs_buckets) when a sale to replace has other buckets than the caller passed (nothing
-- written: call again).

local co = checkout_lib()
local rooms = room_lib()
local start_ms, end_ms, total, name, sold, buckets = read_sale(KEYS[1])
-- Whether the room asked for is the one the sale has (off and off are the same).
local function same_room(room)
  if not room then
    return tonumber(ARGV[9]) == 0
  end
  return room.rate == tonumber(ARGV[9]) and room.admit_ms == tonumber(ARGV[10])
    and room.opens_ms == tonumber(ARGV[11])
end
if start_ms then
  local hold_ms, max_per_buyer = co.read_checkout(KEYS[1])
  if name == ARGV[1] and total == tonumber(ARGV[2]) and start_ms == tonumber(ARGV[3])
      and end_ms == tonumber(ARGV[4]) and hold_ms == tonumber(ARGV[5])
      and max_per_buyer == tonumber(ARGV[6]) and same_room(rooms.read_room(KEYS[14])) then
    return 'SAME'
  end
  if sold > 0 and ARGV[7] ~= '1' then
    return 'HAS_BUYERS'
  end
end
local created = not start_ms
if not created then
  if buckets ~= tonumber(ARGV[8]) then
    return needs_buckets(buckets)
  end
  redis.call('DEL', unpack(KEYS, 1, 14))
  unlink_keys_from(15)
end
write_new_sale(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
co.write_checkout(KEYS[1], ARGV[5], ARGV[6])
rooms.write_room(KEYS[1], KEYS[14], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13])
return created and 'CREATED' or 'REPLACED'
