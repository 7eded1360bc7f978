-- test_api.lua -- the pure parts of tdm.API: ordered JSON (checked against
-- python3's json), image detection by magic bytes, actor ids, no globals.
local t = require "t"

local API
t.test("tdm.api writes no globals", function()
  API = t.require_no_globals("tdm.api")
  t.eq(require("tdm").API, API, "tdm.API is tdm.api")
end)
API = API or require "tdm.api"

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

t.test("encode_json: the core's writer refuses what JSON cannot hold", function()
  t.checkerr(function() return API.encode_json({ f = print }) end,
             "cannot encode a function")
  t.checkerr(function() return API.encode_json({ [2.5] = 1 }) end,
             "object key is a number")
  local deep, c = {}, nil
  c = deep
  for _ = 1, 300 do c.x = {}; c = c.x end
  t.checkerr(function() return API.encode_json(deep) end, "nested more than")
  t.eq(API.encode_json({ 0 / 0, math.huge }), "[null, null]",
       "NaN and infinity as null")
  t.eq(API.encode_json({ z = 1, error = "e", actor_id = 2, a = 3 }),
       '{"actor_id": 2, "error": "e", "a": 3, "z": 1}',
       "known keys in the seed's order, then the others sorted")
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

-- The Lua API against s3rver (tests/run.sh starts it).
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local core = require "tdm.core"
local tdm = require "tdm"
local w = e2e.world { tag = "t/apilua", fixture = { junk = false } }
local dir, prefix, cfg = w.tmp, w.prefix, w.cfg
local api = API.new(cfg)
local tdir = dir .. "/data/actors/0001_all_synced/training_data/"
local mfile = dir .. "/data/actor_manifests/0001_manifest.json"

local function entry(filename)
  for _, e in ipairs(tdm.Manifest.load(mfile, cfg).training_data) do
    if e.filename == filename then return e end
  end
end

t.test("upload: paths and bytes, named by next index, synced", function()
  t.write(dir .. "/p.png", "\137PNG\r\n\26\n" .. string.rep("x", 100))
  local res = assert(api:upload_training_images(1, {
    dir .. "/p.png", { data = "\255\216\255\224jpegdata", filename = "a.jpg" },
    { data = "RIFF\0\0\0\0WEBPVP8 data" } }))
  t.eq(res.uploaded_count, 3, "uploaded")
  local names = {}
  for i, f in ipairs(res.files) do names[i] = f.filename end
  t.eq(names, { "0001_all_synced_4.png", "0001_all_synced_5.jpg",
                "0001_all_synced_6.webp" }, "names")
  for _, n in ipairs(names) do
    t.eq(entry(n).status, "synced", n .. " recorded synced")
    t.ok(core.stat(tdir .. n), n .. " written locally")
  end
  t.eq(res.files[1].source, dir .. "/p.png", "source reported")
end)

t.test("upload: one non-image refuses all, nothing changes", function()
  local before = t.read(mfile)
  local ok, msg, code = api:upload_training_images(1, {
    { data = "\255\216\255\224ok" }, { data = "GIF89a...", filename = "x.gif" } })
  t.eq(ok, nil, "refused")
  t.eq(code, "EBADIMAGE", "code")
  t.ok(msg:find("x.gif", 1, true), "names the file: " .. msg)
  t.eq(t.read(mfile), before, "manifest unchanged")
  t.eq(core.stat(tdir .. "0001_all_synced_7.jpg"), nil, "no file written")
  local big = API.new { data_root = cfg.data_root, prefix = prefix,
                        api_max_upload = 10 }
  ok, msg, code = big:upload_training_images(1, { { data = "\255\216\255" ..
                                                   string.rep("x", 20) } })
  t.eq(code, "E2BIG", "over api_max_upload")
  t.checkerr(function() return api:upload_training_images(1, { 42 }) end,
             "must be a path or a table")
end)

t.test("delete with S3 down: local goes, entry says so, S3 kept", function()
  local down = API.new { data_root = cfg.data_root, prefix = prefix,
                         endpoint = "http://127.0.0.1:9" }
  local ok, _, code = down:delete_training_image(1, "0001_all_synced_0.jpg",
                                                 { s3 = true })
  t.eq(ok, nil, "failed")
  t.ok(code ~= nil, "with a code")
  t.eq(core.stat(tdir .. "0001_all_synced_0.jpg"), nil, "local file removed")
  t.eq(entry("0001_all_synced_0.jpg").status, "s3_only",
       "manifest no longer claims the local file")
  -- S3 back: the same call finishes the job
  local res = assert(api:delete_training_image(1, "0001_all_synced_0.jpg",
                                               { s3 = true }))
  t.eq(res, { filename = "0001_all_synced_0.jpg", deleted_local = false,
              deleted_s3 = true, evicted_local = false, status = API.null },
       "result")
  t.eq(entry("0001_all_synced_0.jpg"), nil, "entry removed")
  local c = assert(tdm.s3.client(cfg))
  t.eq(select(3, c:head(tdm.s3.key_for(cfg, "0001_all_synced",
                                        "0001_all_synced_0.jpg"))),
       "S3_NoSuchKey", "object deleted")
end)

t.test("delete: bad names and unknown things", function()
  local cases = { { 1, "../0001_manifest.json", "EINVAL" },
                  { 1, "a/b.jpg", "EINVAL" }, { 1, "x.txt", "EINVAL" },
                  { 1, "0001_all_synced_99.jpg", "ENOENT" },
                  { 4242, "4242_x_0.jpg", "ENOACTOR" }, { "x", "a.jpg", "EINVAL" } }
  local before = t.read(mfile)
  for _, c in ipairs(cases) do
    local ok, _, code = api:delete_training_image(c[1], c[2], { s3 = true })
    t.eq(ok, nil, c[2] .. " refused")
    t.eq(code, c[3], c[2] .. " code")
  end
  t.eq(t.read(mfile), before, "manifest unchanged")
end)

t.test("get_training_data: a broken manifest is BADMANIFEST, not rewritten", function()
  local f = dir .. "/data/actor_manifests/0002_manifest.json"
  t.write(f, '{"character_id": "0002", "training_data": [')
  local ok, msg, code = api:get_training_data(2)
  t.eq(ok, nil, "refused")
  t.eq(code, "BADMANIFEST", "code (" .. tostring(msg) .. ")")
  t.eq(t.read(f), '{"character_id": "0002", "training_data": [', "file kept")
  local none
  none, msg, code = api:get_training_data(4242)
  t.eq(code, "ENOACTOR", "unknown actor (" .. tostring(msg) .. ")")
end)

t.test("failure codes -> HTTP statuses, from the core's error table", function()
  local status_of = require("tdm.api_http").status_of
  local n = 0
  for code, e in pairs(core.errors) do
    if e.http_status then
      n = n + 1
      t.eq(status_of(code), e.http_status, code)
    end
  end
  t.ok(n > 20, "the table has the codes (" .. n .. ")")
  -- codes the core produces that are not 500s (the old patterns missed them)
  for _, c in ipairs { "ETLS", "ECURL", "ETIMEDOUT", "ECONNRESET",
                       "EHOSTUNREACH", "ETRUNCATED" } do
    t.ok(status_of(c) ~= 500, c .. " is not a 500")
  end
  -- S3 codes the table does not list: S3's own answer
  t.eq(status_of("S3_HTTP504"), 503, "S3_HTTP504")
  t.eq(status_of("S3_HTTP418"), 502, "S3_HTTP418")
  t.eq(status_of("S3_SomethingNew"), 502, "an unknown S3 code")
  t.eq(status_of("EWHATEVER"), 500, "an unknown code")
  t.eq(status_of(nil), 500, "no code")
end)

t.test("http_worker: routing, statuses, Allow, unknown ids remembered", function()
  local w = require('tdm.api_http').http_worker { data_root = cfg.data_root, prefix = prefix }
  local function call(method, path, query)
    local status, body, headers = w.handle { method = method, path = path,
                                             query = query or {} }
    return status, body, headers or {}
  end
  local cases = {
    { "GET", "/healthz", 200 },
    { "GET", "/api/actors/1/training-data", 200 },
    { "GET", "/api/actors/0001/training-data", 200 },
    { "GET", "/api/actors/1/training-data/", 200 },
    { "GET", "/api/actors/x/training-data", 400 },
    { "GET", "/api/actors/1%2f..%2f2/training-data", 400 },
    { "GET", "/api/actors/1/training-data/%2e%2e", 400 },
    { "DELETE", "/api/actors/1/training-data/a%00.jpg", 400 },
    { "GET", "/api/actors/1/other", 404 },
    { "GET", "/", 404 },
    { "DELETE", "/api/actors/1/training-data", 405, "GET, HEAD, POST" },
    { "POST", "/healthz", 405, "GET, HEAD" },
    { "GET", "/api/actors/1/training-data/0001_all_synced_1.jpg", 405, "DELETE" },
  }
  for _, c in ipairs(cases) do
    local status, body, headers = call(c[1], c[2])
    t.eq(status, c[3], c[1] .. " " .. c[2] .. " (" .. tostring(body) .. ")")
    t.eq(headers.Allow, c[4], c[1] .. " " .. c[2] .. " Allow")
  end
  t.eq(call("GET", "/api/actors/4243/training-data"), 404, "unknown actor")
  -- a browser form with one empty file input: that part is skipped
  local before = t.read(mfile)
  local status, body = w.handle { method = "POST", query = {},
    path = "/api/actors/1/training-data",
    files = { { field = "f", filename = "", content_type = "application/octet-stream", data = "" } } }
  t.eq(status, 400, "only an empty file input: no files (" .. body .. ")")
  t.eq(t.read(mfile), before, "nothing recorded")
  -- the actor appears in S3; this worker still says 404 for a while
  local c = assert(tdm.s3.client(cfg))
  t.write(dir .. "/new.jpg", "\255\216\255\224new")
  assert(c:put(dir .. "/new.jpg", tdm.s3.key_for(cfg, "4243_new", "4243_new_0.jpg")))
  t.eq(call("GET", "/api/actors/4243/training-data"), 404,
       "unknown id remembered (no S3 lookup)")
  local fresh = require('tdm.api_http').http_worker { data_root = cfg.data_root, prefix = prefix }
  t.eq(fresh.handle { method = "GET", path = "/api/actors/4243/training-data",
                      query = {} }, 200, "another worker finds it in S3")
end)

return t.done()
