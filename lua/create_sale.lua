-- create_sale.lua: creates a sale only if it does not exist, atomically, so a restart or a new
-- instance started with the same SALE_* variables never resets a live sale.
--
-- KEYS[1] sale:{ID}:config, KEYS[2] sale:{ID}:room
-- ARGV[1] productName, ARGV[2] totalStock, ARGV[3] startMs, ARGV[4] endMs, ARGV[5] holdMs,
-- ARGV[6] maxPerBuyer, ARGV[7] admitPerSecond (0 = no waiting room), ARGV[8] admitMs,
-- ARGV[9] opensMs, ARGV[10] the draw seed, ARGV[11] its commitment
-- Returns 1 when it created the sale, 0 when the sale was already there.

if read_sale(KEYS[1]) then
  return 0
end
write_new_sale(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
checkout_lib().write_checkout(KEYS[1], ARGV[5], ARGV[6])
room_lib().write_room(KEYS[1], KEYS[2], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
return 1
