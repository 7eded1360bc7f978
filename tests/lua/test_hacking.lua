--- test_hacking.lua -- HACKING.md's "Where do I change X?" table stays true:
-- every file it names exists, every function it names is in its file.
local t = require "t"
local ROOT = os.getenv("TDM_TEST_ROOT") or "."

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local hacking = assert(read(ROOT .. "/HACKING.md"), "HACKING.md")
local section = hacking:match("\n## Where do I change X%?\n(.-)\n## ")

t.test("HACKING.md has the table", function()
  t.ok(section and section:find("| an S3 operation |", 1, true), "the section and its rows")
  for _, what in ipairs { "a seed rule", "an S3 operation", "a command",
                          "an HTTP route", "an error message" } do
    t.ok(section:find("| " .. what, 1, true), "a row for " .. what)
  end
end)

t.test("every file the table names exists", function()
  local n = 0
  for path in section:gmatch("`([%w_./-]+%.%a+)`") do
    if path:find("/") and not path:find("NAME", 1, true) then
      n = n + 1
      t.ok(read(ROOT .. "/" .. path) ~= nil, "HACKING.md names " .. path .. ", which does not exist")
    end
  end
  t.ok(n >= 15, "paths found in the table: " .. n)
end)

t.test("every function the table names is in its file", function()
  for _, pair in ipairs { { "derive_status", "src/tdm_manifest.c" },
                          { "route", "lua/tdm/api_http.lua" },
                          { "method_allowed", "lua/tdm/api_http.lua" },
                          { "tdm_s3_handler", "src/tdm_s3_ops.c" } } do
    t.ok(section:find(pair[1], 1, true), "the table names " .. pair[1])
    t.ok((read(ROOT .. "/" .. pair[2]) or ""):find(pair[1], 1, true),
         pair[1] .. " is in " .. pair[2])
  end
end)

return t.done()
