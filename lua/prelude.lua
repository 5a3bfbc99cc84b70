-- prelude.lua: joined in front of every script at build time (src/store/scripts.rs), so each
-- rule below has one definition that all scripts share.

-- Redis's clock in Unix milliseconds: the one clock of the service (SPEC invariant 7).
local function redis_now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- A sale exists when its config hash holds a window and a total. Returns startMs, endMs,
-- totalStock and productName, or nil when the sale does not exist.
local function read_sale(config_key)
  local cfg = redis.call('HMGET', config_key, 'startMs', 'endMs', 'totalStock', 'productName')
  local start_ms, end_ms, total = tonumber(cfg[1]), tonumber(cfg[2]), tonumber(cfg[3])
  if not (start_ms and end_ms and total) then
    return nil
  end
  return start_ms, end_ms, total, cfg[4] or ''
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
