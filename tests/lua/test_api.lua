-- test_api.lua -- the pure parts of tdm.API: ordered JSON (checked against
-- python3's json), image detection by magic bytes, actor ids, no globals.
local t = require "t"

local before = {}
for k in pairs(_G) do before[k] = true end
local API = require "tdm.api"

t.test("tdm.api writes no globals", function()
  for k in pairs(_G) do
    t.ok(before[k], "new global '" .. tostring(k) .. "'")
  end
  t.eq(require("tdm").API, API, "tdm.API is tdm.api")
end)

-- Debian's python3 (a pyenv shim can take seconds to start).
local PY = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"

local function python(code, input)
  local dir = t.tmpdir()
  t.write(dir .. "/in", input)
  t.write(dir .. "/p.py", code)
  local p = io.popen(PY .. " " .. dir .. "/p.py < " .. dir .. "/in")
  local out = p:read("a")
  p:close()
  return out
end

t.test("encode_json: seed key order, arrays, null, floats", function()
  local doc = {
    total_count = 1, out_of_sync_count = 0, synced_count = 1,
    local_only_count = 0, s3_only_count = 0, missing_count = 0,
    actor_name = "0042_x", actor_id = 42,
    training_images = { {
      status = "synced", modified_date = "2025-10-17T14:08:00.000Z",
      size_mb = 0.31, md5_hash = "abc", local_path = "data/a",
      local_exists = true, s3_url = "https://h/k", filename = "0042_x_0.jpg",
      index = 0 } },
  }
  local json = API.encode_json(doc)
  t.eq(json:match('^{"actor_id": 42, "actor_name": "0042_x", '
                  .. '"training_images": %[{"index": 0, "filename"') ~= nil,
       true, "starts in seed order: " .. json)
  local keys = python([[
import json, sys
d = json.loads(sys.stdin.read())
print(",".join(d.keys()))
print(",".join(d["training_images"][0].keys()))
print(repr(d["training_images"][0]["size_mb"]))]], json)
  t.eq(keys, "actor_id,actor_name,training_images,total_count,synced_count,"
       .. "local_only_count,s3_only_count,out_of_sync_count,missing_count\n"
       .. "index,filename,s3_url,local_exists,local_path,md5_hash,size_mb,"
       .. "modified_date,status\n0.31\n", "python sees the seed's key order")
  t.eq(API.encode_json({ a = API.array() }), '{"a": []}', "empty array")
  t.eq(API.encode_json({ a = {} }), '{"a": {}}', "empty object")
  t.eq(API.encode_json({ API.null, 1.0, 5, 0.1, -2.5e-7 }),
       '[null, 1.0, 5, 0.1, -2.5e-07]', "numbers as python writes them")
end)

t.test("encode_json: strings are valid ASCII JSON", function()
  local s = 'q"b\\s\n\t\1 é 😀 \255'
  local json = API.encode_json({ s = s })
  t.eq(json:find("[\128-\255]"), nil, "ASCII only")
  local back = python([[
import json, sys
d = json.loads(sys.stdin.read())
sys.stdout.write(d["s"].encode("utf-8", "surrogateescape").hex())]], json)
  -- \255 is not UTF-8: it comes back as U+00FF
  local want = ('q"b\\s\n\t\1 é 😀 ÿ'):gsub(".", function(c)
    return string.format("%02x", c:byte())
  end)
  t.eq(back, want, "python decodes the same text")
end)

t.test("image_type by magic bytes", function()
  local cases = {
    { "\255\216\255\224rest", "jpg" },
    { "\137PNG\r\n\26\nrest", "png" },
    { "RIFF\0\0\0\0WEBPVP8 ", "webp" },
    { "RIFF\0\0\0\0WAVEfmt ", nil },
    { "GIF89a", nil },
    { "hello world", nil },
    { "", nil },
    { "\255\216", nil },
  }
  for _, c in ipairs(cases) do
    t.eq(API.image_type(c[1]), c[2], string.format("%q", c[1]))
  end
end)

t.test("parse_actor_id", function()
  local good = { { 42, 42 }, { "42", 42 }, { "0042", 42 }, { 0, 0 },
                 { "999999999", 999999999 } }
  for _, c in ipairs(good) do
    t.eq(API.parse_actor_id(c[1]), c[2], "id " .. tostring(c[1]))
  end
  for _, bad in ipairs({ "-1", "4a", "", "1234567890", "42 ", "0x10", -1,
                         4.5, "..", "%2e", "4\0002" }) do
    local id, _, code = API.parse_actor_id(bad)
    t.eq(id, nil, "refused: " .. string.format("%q", tostring(bad)))
    t.eq(code, "EINVAL", "code for " .. string.format("%q", tostring(bad)))
  end
end)

return t.done()
