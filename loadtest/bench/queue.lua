-- wrk script for the waiting room (queue.sh): every request is by a buyer never seen before.
--   join: POST /api/sale/queue                      args: join <prefix>
--   buy:  POST /api/sale/purchase with an admission args: buy <file of "userId admission" lines>
-- A thread takes every n-th line of the file, so no two threads share a buyer. done() prints
-- one JSON line, as purchase.lua's does.

local next_thread = 1
local threads = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  threads = threads + 1
  thread:set("threads", threads)
end

function init(args)
  mode = args[1]
  n = 0
  buyers = {}
  if mode == "join" then
    prefix = (args[2] or "j") .. "-" .. tid .. "-"
  else
    local line_no = 0
    for line in io.lines(args[2]) do
      line_no = line_no + 1
      if line_no % 2 == tid - 1 then
        local user, admission = line:match("^(%S+) (%S+)$")
        buyers[#buyers + 1] = { user, admission }
      end
    end
  end
end

function request()
  n = n + 1
  if mode == "join" then
    local body = '{"userId":"' .. prefix .. n .. '"}'
    return wrk.format("POST", "/api/sale/queue", { ["Content-Type"] = "application/json" }, body)
  end
  local buyer = buyers[n] or buyers[#buyers]
  local body = '{"userId":"' .. buyer[1] .. '"}'
  return wrk.format("POST", "/api/sale/purchase",
    { ["Content-Type"] = "application/json", ["Flashsale-Admission"] = buyer[2] }, body)
end

-- done(): one JSON line, shared by every bench script.
dofile("loadtest/bench/report.lua")
