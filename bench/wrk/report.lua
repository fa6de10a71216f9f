-- Shared by every wrk script here (loaded with dofile): numbers each thread, counts
-- response statuses, keeps the first non-2xx response, and at the end prints one line
--   WRK_JSON {...}
-- with requests, duration, socket errors, statuses and latency percentiles
-- (p50, p75, p90, p95, p99, p99.9, in microseconds) for contacts_bench.py to parse.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

statuses = {}
first_error = nil

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if (status < 200 or status > 299) and first_error == nil then
      first_error = status .. " " .. string.sub(body or "", 1, 500)
   end
end

local function quote(s)
   local escaped = string.gsub(s, '[%c"\\]', function(c)
      if c == '"' then return '\\"' end
      if c == "\\" then return "\\\\" end
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. escaped .. '"'
end

function done(summary, latency, requests)
   local merged = {}
   local sample = ""
   for _, thread in ipairs(threads) do
      for code, count in pairs(thread:get("statuses") or {}) do
         merged[code] = (merged[code] or 0) + count
      end
      local err = thread:get("first_error")
      if err and sample == "" then sample = err end
   end
   local codes = {}
   for code, count in pairs(merged) do
      table.insert(codes, string.format('"%d": %d', code, count))
   end
   local percentiles = {}
   for _, p in ipairs({50, 75, 90, 95, 99, 99.9}) do
      table.insert(percentiles, string.format('"%s": %d', tostring(p), latency:percentile(p)))
   end
   local e = summary.errors
   io.write("WRK_JSON {",
      string.format('"requests": %d, "duration_us": %d, "bytes": %d, ',
         summary.requests, summary.duration, summary.bytes),
      string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ',
         e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us": {"min": %d, "max": %d, "mean": %.1f, "stdev": %.1f, ',
         latency.min, latency.max, latency.mean, latency.stdev),
      '"percentiles": {', table.concat(percentiles, ", "), "}}, ",
      '"statuses": {', table.concat(codes, ", "), "}, ",
      '"first_error": ', quote(sample),
      "}\n")
end
