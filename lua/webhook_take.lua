-- webhook_take.lua: hands this instance's delivery loop the next orders of one sale to POST.
--
-- KEYS[1] sale:{ID}:orders  KEYS[2] sale:{ID}:orders:retry  KEYS[3] sale:{ID}:orders:attempts
-- ARGV[1] consumer group, ARGV[2] this consumer, ARGV[3] how many at most,
-- ARGV[4] claim idle ms (0 = do not claim now), ARGV[5] claim cursor of the orders stream
--
-- Returns {next claim cursor, entry, entry, ...}; each entry is
-- {stream (1 orders, 2 retry), id, failed attempts so far, field, value, field, value, ...}.
--
-- The group is created on first use at id 0, so every order in the stream is delivered, also
-- those sold before webhooks were switched on. Entries another consumer left pending longer
-- than the claim idle time (its instance died) are claimed first, then new entries are read.

local group, me = ARGV[1], ARGV[2]
local room = tonumber(ARGV[3])
local out = {ARGV[5]}

local function add(stream, id, fields, attempts)
  local entry = {stream, id, attempts}
  for i = 1, #fields do
    entry[#entry + 1] = fields[i]
  end
  out[#out + 1] = entry
  room = room - 1
end

-- XREADGROUP answers NOGROUP for a stream without the group: create it once, then read.
local function read_new(stream, key)
  if room <= 0 or redis.call('EXISTS', key) == 0 then
    return
  end
  local reply = redis.pcall('XREADGROUP', 'GROUP', group, me, 'COUNT', room, 'STREAMS', key, '>')
  if type(reply) == 'table' and reply.err then
    redis.call('XGROUP', 'CREATE', key, group, '0')
    reply = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', room, 'STREAMS', key, '>')
  end
  if not reply then
    return
  end
  for _, item in ipairs(reply[1][2]) do
    add(stream, item[1], item[2], 0)
  end
end

local function claim(stream, key, cursor)
  if room <= 0 or redis.call('EXISTS', key) == 0 then
    return cursor
  end
  local reply = redis.pcall('XAUTOCLAIM', key, group, me, ARGV[4], cursor, 'COUNT', room)
  if type(reply) == 'table' and reply.err then
    return '0-0'
  end
  for _, item in ipairs(reply[2]) do
    -- A claimed entry keeps the failures its earlier consumer recorded.
    local attempts = tonumber(redis.call('HGET', KEYS[3], stream .. ':' .. item[1])) or 0
    add(stream, item[1], item[2], attempts)
  end
  return reply[1]
end

if tonumber(ARGV[4]) > 0 then
  out[1] = claim(1, KEYS[1], ARGV[5])
  claim(2, KEYS[2], '0-0')
end
read_new(1, KEYS[1])
read_new(2, KEYS[2])
return out
