-- webhook_backlog.lua: how far one sale's webhook delivery is behind, for metrics.
--
-- KEYS[1] sale:{ID}:orders, KEYS[2] sale:{ID}:orders:retry
-- ARGV[1] consumer group
-- Returns {undelivered orders, age in ms of the oldest undelivered one (0 = none)}, counting
-- entries read but not acknowledged (pending) and entries not read yet.

local count, oldest = 0, nil
local function note(id)
  local ms = tonumber(string.match(id, '^(%d+)'))
  if not oldest or ms < oldest then
    oldest = ms
  end
end

local function group_info(key)
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local fields = {}
    for i = 1, #info, 2 do
      fields[info[i]] = info[i + 1]
    end
    if fields['name'] == ARGV[1] then
      return fields
    end
  end
  return nil
end

for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local group = group_info(key)
    local last = '0-0'
    if group then
      last = group['last-delivered-id']
      -- `lag` is nil when Redis cannot tell (entries deleted from the middle): count them.
      local unread = tonumber(group['lag'])
        or #redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 10000)
      count = count + group['pending'] + unread
      local pending = redis.call('XPENDING', key, ARGV[1])
      if pending[2] then
        note(pending[2])
      end
    else
      count = count + redis.call('XLEN', key)
    end
    local first_unread = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1)
    if #first_unread > 0 then
      note(first_unread[1][1])
    end
  end
end
if not oldest then
  return {count, 0}
end
return {count, math.max(redis_now_ms() - oldest, 0)}
