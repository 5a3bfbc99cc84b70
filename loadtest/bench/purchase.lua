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

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"socket_errors":%d,"non_2xx":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
