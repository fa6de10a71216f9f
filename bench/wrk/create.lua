-- POST /v1/contacts with a new contact per request, cycling through the regions given.
--
--   wrk -t2 -c32 -d15s --latency -s bench/wrk/create.lua http://127.0.0.1:8000 \
--       -- <run-id> eu=<token> br=<token> us=<token>
--
-- Every request carries a unique email (run id, wrk thread number and a per-thread
-- counter), a name (accented Latin, some Devanagari and Persian), a phone number as
-- people type it in that country, and a country that places the contact in the region
-- whose token is sent (the gateway refuses a token from another home region).
-- The baseline app accepts the same requests (it ignores the token), so both are
-- measured with identical bytes on the wire.

local source = debug.getinfo(1, "S").source
dofile((string.match(source, "^@(.*/)") or "./") .. "report.lua")

-- first, last, and their ASCII forms for the email address
local names = {
   eu = {
      {"Anna", "Müller", "anna", "muller"}, {"Jürgen", "Schröder", "jurgen", "schroder"},
      {"Sören", "Weiß", "soren", "weiss"}, {"François", "Lefèvre", "francois", "lefevre"},
      {"Hélène", "Girard", "helene", "girard"}, {"José", "García", "jose", "garcia"},
      {"Lucía", "Martínez", "lucia", "martinez"}, {"Łukasz", "Wójcik", "lukasz", "wojcik"},
      {"Małgorzata", "Nowak", "malgorzata", "nowak"}, {"अनिल", "शर्मा", "anil", "sharma"},
      {"علی", "رضایی", "ali", "rezaei"}, {"Åsa", "Håkansson", "asa", "hakansson"},
   },
   br = {
      {"João", "Gonçalves", "joao", "goncalves"}, {"Conceição", "Araújo", "conceicao", "araujo"},
      {"Luíza", "Magalhães", "luiza", "magalhaes"}, {"Antônio", "Simões", "antonio", "simoes"},
      {"Ana Paula", "Silva", "anapaula", "silva"}, {"Sebastião", "Brandão", "sebastiao", "brandao"},
   },
   us = {
      {"James", "Smith", "james", "smith"}, {"Jennifer", "O'Brien", "jennifer", "obrien"},
      {"José", "Hernández", "jose", "hernandez"}, {"Zoë", "Nguyen", "zoe", "nguyen"},
      {"प्रिया", "पटेल", "priya", "patel"}, {"مریم", "احمدی", "maryam", "ahmadi"},
      {"Chloé", "Tremblay", "chloe", "tremblay"}, {"Emily", "Taylor", "emily", "taylor"},
   },
}

local function digits(n)
   local out = {}
   for i = 1, n do out[i] = tostring(math.random(0, 9)) end
   return table.concat(out)
end

-- country, city, and a phone number typed the way people there write it
local places = {
   eu = {
      function() return "DE", "Berlin", "030 " .. math.random(2, 9) .. digits(6) end,
      function() return "DE", "München", "0151 " .. digits(8) end,
      function() return "FR", "Paris", "06 " .. math.random(40, 89) .. " " .. digits(2) .. " " .. digits(2) .. " " .. digits(2) end,
      function() return "ES", "Madrid", "6" .. digits(2) .. " " .. digits(2) .. " " .. digits(2) .. " " .. digits(2) end,
      function() return "PL", "Kraków", "+48 601 " .. digits(3) .. " " .. digits(3) end,
   },
   br = {
      function() return "BR", "São Paulo", "(11) 9" .. math.random(6, 9) .. digits(3) .. "-" .. digits(4) end,
      function() return "BR", "Rio de Janeiro", "(21) 9" .. math.random(6, 9) .. digits(3) .. "-" .. digits(4) end,
   },
   us = {
      function() return "US", "San Francisco", "(415) " .. math.random(200, 549) .. "-" .. digits(4) end,
      function() return "US", "New York", "(212) " .. math.random(200, 549) .. "-" .. digits(4) end,
      function() return "CA", "Montréal", "(514) " .. math.random(200, 549) .. "-" .. digits(4) end,
      function() return "GB", "London", "07" .. math.random(400, 599) .. " " .. digits(6) end,
   },
}

local run_id = "run"
local regions = {}
local tokens = {}
local counter = 0

function init(args)
   run_id = args[1] or run_id
   for i = 2, #args do
      local region, token = string.match(args[i], "^(%w+)=(.*)$")
      if region and names[region] then
         table.insert(regions, region)
         tokens[region] = token
      end
   end
   if #regions == 0 then
      regions = {"eu"}
      tokens.eu = ""
   end
   math.randomseed(os.time() + 7919 * (tid or 0))
end

function request()
   counter = counter + 1
   local region = regions[(counter + (tid or 0)) % #regions + 1]
   local person = names[region][math.random(#names[region])]
   local place = places[region][math.random(#places[region])]
   local country, city, phone = place()
   local email = string.format("%s.%s.%s.%d.%d@example.com",
      person[3], person[4], run_id, tid or 0, counter)
   local body = string.format(
      '{"first_name":"%s","last_name":"%s","emails":["%s"],"phones":["%s"],' ..
      '"address":{"country":"%s","city":"%s"},"tags":["bench"],"source":"import"}',
      person[1], person[2], email, phone, country, city)
   return wrk.format("POST", "/v1/contacts", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[region],
   }, body)
end
