-- prelude.lua: joined in front of every script at build time (src/store/scripts/mod.rs), so each
-- rule below has one definition that all scripts share.

-- Redis's clock in Unix milliseconds: the one clock of the service (README, How a purchase stays atomic, step 3).
local function redis_now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- A sale exists when its config hash holds a window, a total, the units sold and its number of
-- buyer buckets. Returns startMs, endMs, totalStock, productName, sold and buyerBuckets, or nil
-- when the sale does not exist. The remaining stock is totalStock - sold: one counter, so a
-- purchase takes a unit and its order number with one HINCRBY.
local function read_sale(config_key)
  local cfg = redis.call('HMGET', config_key, 'startMs', 'endMs', 'totalStock', 'productName',
    'sold', 'buyerBuckets')
  local start_ms, end_ms, total = tonumber(cfg[1]), tonumber(cfg[2]), tonumber(cfg[3])
  local sold, buckets = tonumber(cfg[5]), tonumber(cfg[6])
  if not (start_ms and end_ms and total and sold and buckets) then
    return nil
  end
  return start_ms, end_ms, total, cfg[4] or '', sold, buckets
end

-- Buyers live in small hashes, `<buyers prefix>:<n>`, about 100 buyers each once the stock is
-- sold, so Redis keeps each as a listpack (hash-max-listpack-entries, 128 by default): about
-- 40 % of the memory of one big hash, whose every field costs a dictEntry and two allocations.
-- The number is fixed when a sale is created (or replaced) and kept in its config.
local function buyer_buckets(total)
  return math.min(65536, math.max(1, math.ceil(total / 100)))
end

-- The bucket of a user: the same for every instance and build (SHA-1 of the userId). All
-- buckets carry the sale's hash tag, so they share the slot of the keys the script was given.
local function buyer_bucket(buyers_prefix, buckets, user)
  if buckets <= 1 then
    return buyers_prefix .. ':0'
  end
  return buyers_prefix .. ':' .. (tonumber(string.sub(redis.sha1hex(user), 1, 8), 16) % buckets)
end

-- Removes every buyer bucket of a sale (admin scripts only: O(buckets)).
local function delete_buyers(buyers_prefix, buckets)
  local batch = {}
  for n = 0, buckets - 1 do
    batch[#batch + 1] = buyers_prefix .. ':' .. n
    if #batch == 1000 or n == buckets - 1 then
      redis.call('UNLINK', unpack(batch))
      batch = {}
    end
  end
end

-- Writes a new sale's config: nothing sold yet, its buyer buckets sized to its stock.
local function write_new_sale(config_key, name, total, start_ms, end_ms)
  redis.call('HSET', config_key, 'productName', name, 'totalStock', total, 'startMs', start_ms,
    'endMs', end_ms, 'createdMs', redis_now_ms(), 'sold', 0,
    'buyerBuckets', buyer_buckets(tonumber(total)))
end

-- A buyer record: "<purchaseMs>:<orderNumber>:<requestToken>".
local function buyer_record(purchase_ms, order, token)
  return purchase_ms .. ':' .. order .. ':' .. token
end

-- Returns purchaseMs, orderNumber and the request token of a buyer record.
local function parse_buyer(record)
  local purchase_ms, order, token = string.match(record, '^(%d+):(%d+):(.*)$')
  return tonumber(purchase_ms), tonumber(order), token
end

-- Deletes every key matching a pattern of the sale's own keys (its attempt counters). O(keys):
-- for admin scripts only, never the purchase path.
local function delete_matching(pattern)
  local cursor = '0'
  repeat
    local page = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = page[1]
    if #page[2] > 0 then
      redis.call('DEL', unpack(page[2]))
    end
  until cursor == '0'
end
