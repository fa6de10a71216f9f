-- GET search requests read from a file, one per line: "<path>\t<bearer token>".
--
--   wrk -t2 -c32 -d15s --latency -s bench/wrk/search.lua http://127.0.0.1:8000 \
--       -- /path/to/requests.tsv
--
-- contacts_bench.py writes the file: search queries for each region (names, accents,
-- typos, other scripts, phone fragments), each with a token whose home region is that
-- region. Each thread starts at a different line and cycles through all of them.

local source = debug.getinfo(1, "S").source
dofile((string.match(source, "^@(.*/)") or "./") .. "report.lua")

local requests = {}
local index = 0

function init(args)
   local path = args[1] or error("search.lua needs the requests file: -- <file>")
   for line in io.lines(path) do
      local target, token = string.match(line, "^([^\t]+)\t(.*)$")
      if target then
         table.insert(requests, wrk.format("GET", target, {
            ["Authorization"] = "Bearer " .. token,
         }))
      end
   end
   if #requests == 0 then error("no requests in " .. path) end
   index = ((tid or 1) - 1) * 7
end

function request()
   index = index + 1
   return requests[index % #requests + 1]
end
