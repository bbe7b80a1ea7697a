-- wrk script of the benchmarks: GET BENCH_WRK_PATH, with the ids of BENCH_WRK_IDS (one a line)
-- appended in turn when that file is given; prints one BENCHJSON line with the percentiles.
local path = os.getenv("BENCH_WRK_PATH") or "/"
local ids = {}
local ids_file = os.getenv("BENCH_WRK_IDS")
if ids_file and ids_file ~= "" then
  for line in io.lines(ids_file) do ids[#ids + 1] = line end
end
local counter = 0
wrk.headers["X-API-Key"] = os.getenv("BENCH_API_KEY") or ""

function setup(thread)
  thread:set("offset", math.random(0, 1000000))
end

request = function()
  counter = counter + 1
  if #ids > 0 then
    return wrk.format("GET", path .. ids[((counter + (offset or 0)) % #ids) + 1])
  end
  return wrk.format("GET", path)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
