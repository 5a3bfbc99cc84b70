-- queue_ranks.lua: the positions of pre-queue buyers once the sale has started, many at once,
-- so an instance resolves every waiting stream's place in one call (README, Waiting room).
-- Read-only.
--
-- KEYS[1] sale:{ID}:queue, KEYS[2] sale:{ID}:prequeue (lua/queue_join.lua); ARGV: userIds
-- Returns one position per buyer (1-based), 0 for a buyer not in the pre-queue.

local positions = {}
for i, user in ipairs(ARGV) do
  local ticket = redis.call('HGET', KEYS[1], user)
  local rank = ticket and string.sub(ticket, 1, 1) == 'p'
    and redis.call('ZRANK', KEYS[2], string.sub(ticket, 2) .. ':' .. user)
  positions[i] = rank and rank + 1 or 0
end
return positions
