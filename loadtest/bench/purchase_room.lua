-- wrk script: purchase.lua's new buyer per request, at a sale with the waiting room on, each
-- with the signed admission loadtest/bench/admissions.py made for that buyer beforehand (the
-- service checks its signature, the script its expiry). Arguments: the userId prefix (as
-- purchase.lua's) and the prefix of admissions.py's files. Past the last admission a buyer
-- repeats (409s: floors.sh then stops the run, its figures no longer those of purchases).

dofile("loadtest/bench/purchase.lua")

local buyer_init = init

function init(args)
  buyer_init(args)
  admissions = {}
  for line in io.lines(args[2] .. "-" .. tid .. ".txt") do
    admissions[#admissions + 1] = line
  end
end

function request()
  n = n % #admissions + 1
  local body = '{"userId":"' .. prefix .. n .. '"}'
  return wrk.format("POST", "/api/sale/purchase", {
    ["Content-Type"] = "application/json",
    ["Flashsale-Admission"] = admissions[n],
  }, body)
end
