-- wrk script: the shop's backend confirming orders 1, 2, 3, … of one sale, each once (thread t
-- of T confirms t, t+T, t+2T, …). Args: saleId, admin token, number of threads.
-- done() prints one JSON line that checkout.sh parses.

local next_thread = 1

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  sale = args[1]
  token = args[2]
  threads = tonumber(args[3])
  n = tid - threads
end

function request()
  n = n + threads
  return wrk.format("POST", "/api/admin/sales/" .. sale .. "/orders/" .. n .. "/confirm",
    { ["Authorization"] = "Bearer " .. token })
end

-- done(): one JSON line, shared by every bench script.
dofile("loadtest/bench/report.lua")
