-- wrk script: every request is a purchase by a buyer never seen before (unique per thread,
-- per request, per run), so every request runs the full purchase path: checks, DECR, HSET.
-- done() prints one JSON line that run.sh parses.

local next_thread = 1

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  n = 0
  prefix = (args[1] or "b") .. "-" .. tid .. "-"
end

function request()
  n = n + 1
  local body = '{"userId":"' .. prefix .. n .. '"}'
  return wrk.format("POST", "/api/sale/purchase", { ["Content-Type"] = "application/json" }, body)
end

-- done(): one JSON line, shared by every bench script.
dofile("loadtest/bench/report.lua")
