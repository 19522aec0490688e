-- wrk script for scripts/load.sh: POSTs one signed GitHub delivery, built once per
-- thread. Environment: PAYLOAD_FILE, GH_EVENT, SIG256, DELIVERY.
local function must(name)
  local v = os.getenv(name)
  if v == nil or v == "" then error("load.lua: " .. name .. " not set") end
  return v
end

local f = assert(io.open(must("PAYLOAD_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/load"
wrk.headers["X-GitHub-Event"] = must("GH_EVENT")
wrk.headers["X-GitHub-Delivery"] = must("DELIVERY")
wrk.headers["X-Hub-Signature-256"] = must("SIG256")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
