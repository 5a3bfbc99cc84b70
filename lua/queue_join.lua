-- queue_join.lua: joins a buyer to a sale's waiting room, or reads their place (README, Waiting
-- room). One call, O(log n): a hash lookup, and a sorted-set insert or rank for the pre-queue.
--
-- KEYS[1] config, KEYS[2] sale:{ID}:queue (hash: userId -> ticket: 'p<rankKey>' for a join
-- before the start, else the join's number after the start), KEYS[3] sale:{ID}:prequeue (sorted
-- set, every score 0, so ordered by member: '<rankKey>:<userId>', the rank key being the hex of
-- HMAC-SHA256(seed, userId) that the caller computed from the draw's seed), KEYS[4] room
-- ARGV[1] userId, ARGV[2] rankKey, ARGV[3] the commitment of the seed the caller used,
-- ARGV[4] '1' to join, '0' only to read
--
-- Returns {code, position, totalStock, remaining, held, startMs, endMs, nowMs, room fields
-- (prelude: room_reply)} where code is QUEUED (in the queue), SOLD_OUT (not joined: nothing left
-- to buy), or alone SALE_NOT_FOUND, NO_WAITING_ROOM, NOT_IN_QUEUE (read only), QUEUE_NOT_OPEN,
-- SALE_ENDED, STALE_DRAW (the caller's seed is not the sale's: it reads the room again).
-- position is 0 for a pre-queue buyer before the start: their place is drawn at the start.
-- Positions are 1..n without gaps: the pre-queue first (by rank key), then joins after the
-- start in the order Redis saw them. Writes only when a new buyer joins.

local start_ms, end_ms, total, _, sold, _, _, held, rate = read_sale(KEYS[1])
if not start_ms then
  return {'SALE_NOT_FOUND'}
end
if not rate or rate <= 0 then
  return {'NO_WAITING_ROOM'}
end
local rooms = room_lib()
local room = rooms.read_room(KEYS[4])
local now_ms = redis_now_ms()
local remaining = total - sold

local function answer(code, position)
  local reply = {code, position, total, remaining, held, start_ms, end_ms, now_ms}
  for _, field in ipairs(rooms.room_reply(room, now_ms, start_ms)) do
    reply[#reply + 1] = field
  end
  return reply
end

local function pre_position(rank_key)
  if now_ms < start_ms then
    return 0
  end
  return redis.call('ZRANK', KEYS[3], rank_key .. ':' .. ARGV[1]) + 1
end

local ticket = redis.call('HGET', KEYS[2], ARGV[1])
if ticket then
  if string.sub(ticket, 1, 1) == 'p' then
    return answer('QUEUED', pre_position(string.sub(ticket, 2)))
  end
  return answer('QUEUED', room.pre + tonumber(ticket))
end
if ARGV[4] ~= '1' then
  return {'NOT_IN_QUEUE'}
end
if now_ms >= end_ms then
  return {'SALE_ENDED'}
end
if now_ms < room.opens_ms then
  return {'QUEUE_NOT_OPEN', 0, total, remaining, held, start_ms, end_ms, now_ms, room.opens_ms}
end
if now_ms >= start_ms and remaining <= 0 and held <= 0 then
  -- Nothing left to buy: nobody joins a queue that cannot reach a unit.
  return answer('SOLD_OUT', 0)
end
if now_ms < start_ms then
  if room.commitment ~= ARGV[3] or ARGV[2] == '' then
    return {'STALE_DRAW'}
  end
  redis.call('HSET', KEYS[2], ARGV[1], 'p' .. ARGV[2])
  redis.call('ZADD', KEYS[3], '0', ARGV[2] .. ':' .. ARGV[1])
  room.pre = redis.call('HINCRBY', KEYS[4], 'pre', '1')
  return answer('QUEUED', 0)
end
local n = redis.call('HINCRBY', KEYS[4], 'seq', '1')
redis.call('HSET', KEYS[2], ARGV[1], int_text(n))
room.seq = n
return answer('QUEUED', room.pre + n)
