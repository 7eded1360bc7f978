-- test_api_truth.lua -- tdm.API against s3rver where other writers share
-- the bucket (issue 15):
--   * an upload never replaces an object it did not write: the next index
--     accounts for the S3 listing, a key that appears after the listing is
--     seen by the HEAD before the PUT, and (against the AWS-imitating
--     proxy, tests/lib/awsproxy.js, in conditional mode) one that appears
--     between the HEAD and the PUT is refused by If-None-Match -> next
--     index;
--   * a delete without s3 evicts the local copy: the entry stays s3_only
--     while the object exists; an entry with nothing left is removed.
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local w = e2e.world { tag = "t/apitruth" }
local cfg, real = w.cfg, w.client
local NAME = "0044_shared_actor"

local function jpeg(n, seed)
  local b = { "\255\216\255\224" }
  for i = 1, n - 4 do b[#b + 1] = string.char((i * 31 + seed) % 256) end
  return table.concat(b)
end

-- Another host writes `fn` straight to S3; returns its bytes' MD5.
local other = 0
local function other_host_puts(fn)
  other = other + 1
  local data = jpeg(700 + other, 100 + other)
  local p = w.tmp .. "/other" .. other .. ".jpg"
  t.write(p, data)
  assert(real:put(p, w:key(NAME, fn)))
  return core.md5(data)
end

local function s3_md5(fn)
  local h = real:head(w:key(NAME, fn))
  return h and h.md5
end

-- A client that runs `before[method](args)` once before the real call:
-- another writer acting at an exact point of the upload. Every answer is
-- the real server's.
local function interleaved(before)
  return setmetatable({
    head = function(_, key, ...)
      if before.head then before.head(key); before.head = nil end
      return real:head(key, ...)
    end,
    put = function(_, path, key, opts)
      if before.put then before.put(key); before.put = nil end
      return real:put(path, key, opts)
    end,
  }, { __index = real })
end

local function upload(api, seed)
  local res, msg, code = api:upload_training_images(44, { { data = jpeg(900,
                                                                   seed) } })
  assert(res, tostring(msg) .. " " .. tostring(code))
  t.eq(res.failed_count, 0, "failed_count: " .. tostring(res.files[1].error))
  return res.files[1].filename
end

-- The actor exists locally with image 0; the first upload makes its
-- manifest (index 1).
core.mkdirs(w:tdir(NAME))
t.write(w:lpath(NAME, NAME .. "_0.jpg"), jpeg(800, 1))
local api = tdm.API.new(cfg)
t.eq(upload(api, 2), NAME .. "_1.jpg", "first upload after the local _0")

t.test("another host's object in the listing is never replaced", function()
  local theirs = other_host_puts(NAME .. "_2.jpg")
  local fn = upload(api, 3)
  t.eq(fn, NAME .. "_3.jpg", "index past the S3 listing")
  t.eq(s3_md5(NAME .. "_2.jpg"), theirs, "the other host's _2 untouched")
end)

t.test("a key written after the listing is seen by the HEAD", function()
  local theirs
  local api2 = tdm.API.new(cfg, { s3 = interleaved { head = function()
    theirs = other_host_puts(NAME .. "_4.jpg")
  end } })
  local fn = upload(api2, 4)
  t.eq(fn, NAME .. "_5.jpg", "the taken index skipped")
  t.eq(s3_md5(NAME .. "_4.jpg"), theirs, "the other host's _4 untouched")
  t.eq(core.stat(w:lpath(NAME, NAME .. "_4.jpg")), nil,
       "no local file under the taken name")
end)

t.test("a key written between HEAD and PUT: If-None-Match (proxy)", function()
  local p = e2e.fp.start_aws { modes = "conditional" }
  local pc = assert(tdm.s3.client(tdm.config {
    data_root = w.D, prefix = w.prefix, endpoint = p.url }))
  local theirs
  local racing = setmetatable({
    put = function(_, path, key, opts)
      if not theirs then theirs = other_host_puts(NAME .. "_6.jpg") end
      return pc:put(path, key, opts)
    end,
  }, { __index = pc })
  local fn = upload(tdm.API.new(cfg, { s3 = racing }), 6)
  p:stop()
  t.eq(fn, NAME .. "_7.jpg", "412 moved the upload to the next index")
  t.eq(s3_md5(NAME .. "_6.jpg"), theirs, "the other host's _6 untouched")
end)

t.test("local_path: relative in the manifest, absolute in the API", function()
  local fn = NAME .. "_1.jpg"
  local m = assert(tdm.Manifest.load(w:mpath(NAME), cfg))
  local stored
  for _, e in ipairs(m.training_data) do
    if e.filename == fn then stored = e.local_path end
  end
  t.eq(stored, "data/actors/" .. NAME .. "/training_data/" .. fn,
       "the seed's relative form stored")
  local shown
  for _, img in ipairs(assert(api:get_training_data(44)).training_images) do
    if img.filename == fn then shown = img.local_path end
  end
  t.eq(shown, w:lpath(NAME, fn), "absolute, from the configured root")
end)

t.test("delete without s3 evicts the local copy; the entry stays", function()
  local fn = NAME .. "_1.jpg"
  local res, msg = api:delete_training_image(44, fn)
  t.ok(res, "delete: " .. tostring(msg))
  t.eq({ res.deleted_local, res.deleted_s3, res.evicted_local, res.status },
       { true, false, true, "s3_only" }, "reported as an eviction")
  t.eq(core.stat(w:lpath(NAME, fn)), nil, "local file gone")
  t.ok(s3_md5(fn), "object kept")
  local m = assert(tdm.Manifest.load(w:mpath(NAME), cfg))
  local st
  for _, e in ipairs(m.training_data) do
    if e.filename == fn then st = e.status end
  end
  t.eq(st, "s3_only", "entry kept, s3_only")
  -- again: nothing local left, the object is still there: entry stays
  res = assert(api:delete_training_image(44, fn))
  t.eq({ res.deleted_local, res.evicted_local, res.status },
       { false, false, "s3_only" }, "second delete changes nothing")
  -- with s3: object and entry go
  res = assert(api:delete_training_image(44, fn, { s3 = true }))
  t.eq({ res.deleted_s3, res.status }, { true, tdm.API.null },
       "deleted everywhere, entry removed")
  t.eq(s3_md5(fn), nil, "object gone")
end)

t.test("delete of a local-only image removes its entry", function()
  local fn = NAME .. "_0.jpg"      -- never uploaded
  t.eq(s3_md5(fn), nil, "not in S3")
  assert(tdm.Sync.new(cfg):auto_initialize_manifest(44))  -- adopts it
  local res = assert(api:delete_training_image(44, fn))
  t.eq({ res.deleted_local, res.evicted_local, res.status },
       { true, false, tdm.API.null }, "nothing left: entry removed")
  local _, _, code = api:delete_training_image(44, fn)
  t.eq(code, "ENOENT", "the entry is gone")
end)

t.test("an entry whose object another host re-created is not removed",
       function()
  local fn = NAME .. "_3.jpg"
  assert(api:delete_training_image(44, fn, { s3 = true }))
  -- (removed everywhere) -- now an entry is local_only, and meanwhile
  -- another host writes the same key: the entry must stay
  local fn2 = upload(api, 9)
  assert(real:delete(w:key(NAME, fn2)))
  local m = assert(tdm.Manifest.open(44, cfg))
  assert(m:update_image(fn2, { s3 = false }))
  assert(m:save())
  m:close()
  local theirs = other_host_puts(fn2)
  local res = assert(api:delete_training_image(44, fn2))
  t.eq({ res.deleted_local, res.evicted_local, res.status },
       { true, true, "s3_only" }, "kept: the object exists")
  t.eq(s3_md5(fn2), theirs, "their object untouched")
end)

w:cleanup()
return t.done()
