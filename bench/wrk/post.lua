-- POST one fixed JSON body on every request and print a JSON summary.
--
--   wrk -t2 -c8 -d20s -s bench/wrk/post.lua URL -- BODY_FILE [HEADER ...]
--
-- BODY_FILE is sent as the body; each HEADER is "Name: value" (e.g. the
-- "Authorization: Api-Key ..." our API needs). The request is built once per
-- thread; the only per-request work is counting answers other than 200 by
-- status. done() prints one line starting with "WRK_JSON " that
-- bench/serving.py parses: requests, duration, errors by kind, the non-200
-- statuses, and latency percentiles in microseconds.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Per thread (each wrk thread has its own Lua state); collected in done().
statuses = {}

function response(status, headers, body)
   if status ~= 200 then
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: -- BODY_FILE [HEADER ...]")
   end
   local file = assert(io.open(path, "rb"))
   wrk.body = file:read("*a")
   file:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   for i = 2, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      if name == nil then
         error("header must be 'Name: value': " .. args[i])
      end
      wrk.headers[name] = value
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local non200 = {}
   for status, n in pairs(counts) do
      table.insert(non200, string.format('"%d": %d', status, n))
   end
   local parts = {
      string.format('"requests": %d', summary.requests),
      string.format('"duration_us": %d', summary.duration),
      string.format('"bytes": %d', summary.bytes),
      string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
                    e.connect, e.read, e.write, e.status, e.timeout),
      '"non_200": {' .. table.concat(non200, ", ") .. '}',
      string.format('"latency_us": {"min": %d, "mean": %.1f, "max": %d, "stdev": %.1f, "p50": %d, "p90": %d, '
                       .. '"p99": %d, "p999": %d}',
                    latency.min, latency.mean, latency.max, latency.stdev, latency:percentile(50),
                    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)),
   }
   io.write("WRK_JSON {" .. table.concat(parts, ", ") .. "}\n")
end
