-- key_check.lua: joined in front of every script when REDIS_SCRIPT_KEY_CHECK is on (the test
-- suite runs with it): any command a script sends that names a key missing from KEYS raises an
-- error, as Dragonfly refuses an undeclared key. Redis runs such a script without complaint on
-- one node, so without this a key computed inside a script would go unnoticed until a server
-- that relies on KEYS (Valkey, Dragonfly, a cluster proxy) ran it. SPEC §2: every key a script
-- touches is passed in KEYS. Off by default: it costs every command a table lookup.
--
-- A local `redis` shadows the global one for everything joined after it (the prelude and the
-- script), so their calls go through the check.
local redis = (function(real)
  local declared = {}
  for _, key in ipairs(KEYS) do
    declared[key] = true
  end
  -- The positions of a command's keys among its arguments: the first, unless listed here.
  local function keys_of(command, args)
    if command == 'TIME' or command == 'SCAN' then
      return {}
    elseif command == 'DEL' or command == 'UNLINK' or command == 'EXISTS' or command == 'MGET' then
      return args
    elseif command == 'RENAME' then
      return {args[1], args[2]}
    elseif command == 'XGROUP' or command == 'XINFO' then
      return {args[2]}
    elseif command == 'XREAD' or command == 'XREADGROUP' then
      for i, arg in ipairs(args) do
        if string.upper(arg) == 'STREAMS' then
          local keys, count = {}, (#args - i) / 2
          for j = i + 1, i + count do
            keys[#keys + 1] = args[j]
          end
          return keys
        end
      end
      return {}
    end
    return {args[1]}
  end
  local function check(command, ...)
    local name = string.upper(command)
    for _, key in ipairs(keys_of(name, {...})) do
      if not declared[key] then
        error('key check: ' .. name .. ' touched ' .. tostring(key) .. ', which is not in KEYS')
      end
    end
  end
  return setmetatable({
    call = function(command, ...)
      check(command, ...)
      return real.call(command, ...)
    end,
    pcall = function(command, ...)
      check(command, ...)
      return real.pcall(command, ...)
    end,
  }, {__index = real})
end)(redis)
